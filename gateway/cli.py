"""``opshero-gateway``: the reference gateway agent's command line.

    opshero-gateway enroll --server URL --token ohe_... --serial S --state-dir DIR
    opshero-gateway run --state-dir DIR [--config FILE]
    opshero-gateway simulate --fleet FLEET.json [--gateways N] [--scenario ...]
    opshero-gateway whoami|status|rotate-key --state-dir DIR

``run`` is the daemon (docs/gateway.md): it polls the desired state, verifies and installs
signed models, serves inference locally, and forwards telemetry from its queue, until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from . import __main__ as basic
from .agent import AGENT_VERSION, Agent
from .client import STATE_FILE, DeviceAPIError, DeviceClient, GatewayStateError
from .config import ConfigError, load_config
from .logs import configure_logging

log = logging.getLogger("opshero.gateway.cli")


def run(state_dir: str, config_file: str | None = None) -> int:
    try:
        config = load_config(state_dir, config_file=config_file)
    except ConfigError as exc:
        print(f"Configuration refused: {exc}", file=sys.stderr)
        return 3
    configure_logging(level=config.log_level, fmt=config.log_format)
    try:
        client = DeviceClient.load(state_dir)
    except GatewayStateError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    try:
        client.resume_rotation(state_dir)
    except (OSError, DeviceAPIError) as exc:
        log.warning(
            "could not settle a pending key rotation yet", extra={"fields": {"why": str(exc)}}
        )
    enrollment = json.loads((Path(state_dir) / STATE_FILE).read_text()).get("enrollment") or {}
    agent = Agent(
        state_dir,
        config,
        server=client.server,
        device_id=client.device_id,
        private_key=client.private_key,
    )
    agent.start(enrollment_keys=enrollment.get("signing_keys") or [])
    extra: list[threading.Thread] = []
    address = config.listen_address
    if address is not None:
        from .serve import make_server

        try:
            server = make_server(agent, address)
        except OSError as exc:
            log.error("cannot listen", extra={"fields": {"listen": config.listen, "why": str(exc)}})
            agent.queue.close()
            return 2
        log.info("inference endpoint listening", extra={"fields": {"listen": config.listen}})
        extra.append(threading.Thread(target=server.serve_forever, name="http", daemon=True))

        def shut() -> None:
            agent._stop.wait()
            server.shutdown()
            server.server_close()

        extra.append(threading.Thread(target=shut, name="http-stop", daemon=True))
    if config.drop_folder:
        from .serve import DropFolder

        folder = DropFolder(agent, config.drop_folder)
        extra.append(
            threading.Thread(target=folder.loop, args=(agent._stop,), name="drop", daemon=True)
        )

    def on_signal(signum: int, frame: object) -> None:
        log.info("stopping", extra={"fields": {"signal": signal.Signals(signum).name}})
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run(extra_threads=extra)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"opshero-gateway {AGENT_VERSION}")
        return 0
    if argv[0] == "run":
        parser = argparse.ArgumentParser(
            prog="opshero-gateway run", description="run the gateway agent"
        )
        parser.add_argument("--state-dir", required=True)
        parser.add_argument(
            "--config", default=None, help="TOML file (default: STATE_DIR/gateway.toml)"
        )
        args = parser.parse_args(argv[1:])
        return run(args.state_dir, args.config)
    if argv and argv[0] == "simulate":
        from .simulate import main as simulate

        return simulate(argv[1:])
    return basic.main(argv)


if __name__ == "__main__":
    sys.exit(main())
