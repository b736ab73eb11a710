"""The agent's configuration: defaults, then a TOML file, then the environment.

The file is ``<state-dir>/gateway.toml`` unless ``--config`` names another; every key may also
come from the environment as ``OPSHERO_GATEWAY_<KEY>`` (upper case), which wins. Unknown keys
and wrong types are refused with the key's name, so a typo never silently means a default::

    # /etc/opshero-gateway/gateway.toml
    listen = "127.0.0.1:8710"       # the local inference endpoint ("" turns it off)
    drop_folder = ""                # a folder cameras write inputs into ("" off)
    queue_max_events = 1000000
    queue_max_mb = 512
    queue_ttl_hours = 168           # 7 days
    overflow = "drop_oldest"        # or "drop_newest"
    batch_size = 500
    health_interval_s = 60
    min_poll_interval_s = 10        # never poll `desired` faster, whatever the policy says
    log_level = "INFO"
    log_format = "json"             # or "text"
    ort_threads = 1                 # onnxruntime intra-op threads per model
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_FILE", "ENV_PREFIX", "AgentConfig", "ConfigError", "load_config"]

CONFIG_FILE = "gateway.toml"
ENV_PREFIX = "OPSHERO_GATEWAY_"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the source."""


@dataclass(frozen=True)
class AgentConfig:
    listen: str = "127.0.0.1:8710"
    drop_folder: str = ""
    queue_max_events: int = 1_000_000
    queue_max_mb: int = 512
    queue_ttl_hours: float = 168.0
    overflow: str = "drop_oldest"
    batch_size: int = 500
    health_interval_s: float = 60.0
    min_poll_interval_s: float = 10.0
    log_level: str = "INFO"
    log_format: str = "json"
    ort_threads: int = 1

    def __post_init__(self) -> None:
        if self.overflow not in ("drop_oldest", "drop_newest"):
            raise ConfigError(f"overflow must be drop_oldest or drop_newest, not {self.overflow!r}")
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"log_format must be json or text, not {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"log_level must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}"
            )
        for name in ("queue_max_events", "queue_max_mb", "batch_size", "ort_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("queue_ttl_hours", "health_interval_s", "min_poll_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.listen:
            host, _, port = self.listen.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"listen must be HOST:PORT, e.g. 127.0.0.1:8710, not {self.listen!r}"
                )

    @property
    def listen_address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


_TYPES = {f.name: f.type for f in fields(AgentConfig)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} in {source} must be {'a number' if kind != 'str' else 'text'}, not {value!r}"
        ) from None


def load_config(
    state_dir: str | os.PathLike[str],
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    environ = os.environ if environ is None else environ
    path = Path(config_file) if config_file else Path(state_dir) / CONFIG_FILE
    values: dict[str, Any] = {}
    if config_file and not path.exists():
        raise ConfigError(f"the configuration file {path} does not exist")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(_TYPES))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_TYPES)})"
            )
        values.update({name: _coerce(name, value, str(path)) for name, value in data.items()})
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _TYPES:
            continue  # OPSHERO_GATEWAY_* may also name things the agent does not configure
        values[name] = _coerce(name, value, key)
    try:
        return replace(AgentConfig(), **values)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from {path if path.exists() else 'the environment'})") from None
