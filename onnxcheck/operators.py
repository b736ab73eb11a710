"""Operator support lists for hardware targets, read from the installed onnxruntime.

"We assumed conversion would work" is the failure this module exists to prevent: before a model
is signed for a target, every node must map onto an operator that the target's runtime really
implements. The lists are never typed in by hand; they come from the onnxruntime wheel that the
validation worker runs, so they change only when that pinned version changes, and every profile
says which file (and which onnxruntime version) it was read from.

- CPU: the kernels registered in the onnxruntime build itself (``get_all_opkernel_def``), with
  their opset ranges and type constraints.
- NNAPI, CoreML MLProgram, CoreML NeuralNetwork: the Markdown tables that onnxruntime ships for
  its own mobile usability checker (``onnxruntime/tools/mobile_helpers/*.md``). They give no opset
  ranges; their "Note" column (conditions such as "Only 2D Conv is supported") is kept per
  operator because those conditions are not checked statically and a reviewer must see them.
- TensorRT, OpenVINO, Qualcomm QNN: *documentary* profiles. Those execution providers are not
  installed and cannot be downloaded at run time, so their operator lists are the vendors'
  published support tables, transcribed into ``onnxcheck/data/*_operators.txt`` with the document,
  version and commit they were read from. A documentary profile says what the vendor documents,
  not what was run: every result on it says so (``documentary=True``).

No Django import: the Celery worker, the tests and the gateway tooling all use this module.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DOMAIN = ""
"""ONNX's default operator set. Files and tools spell it ``ai.onnx``; we normalise to ``""``."""

_OPEN_ENDED_OPSET = 2**31 - 1  # what onnxruntime reports as the upper bound of the newest kernel

_MOBILE_HELPERS = "onnxruntime.tools.mobile_helpers"
NNAPI_OPS_FILE = "nnapi_supported_ops.md"
COREML_MLPROGRAM_OPS_FILE = "coreml_supported_mlprogram_ops.md"
COREML_NEURALNETWORK_OPS_FILE = "coreml_supported_neuralnetwork_ops.md"

# onnxruntime's "Making dynamic input shapes fixed" page: "NNAPI and CoreML do not support
# dynamic input shapes"; its usability checker checks all three with require_fixed_input_sizes.
_STATIC_SHAPES_SOURCE = (
    "static shapes: onnxruntime docs 'Making dynamic input shapes fixed' (NNAPI and CoreML do not "
    "support dynamic input shapes; onnxruntime.tools.make_dynamic_shape_fixed fixes them)"
)
# onnxruntime/tools/mobile_helpers/usability_checker.py: check_coreml_partitions(max_rank=5).
_COREML_MAX_RANK = 5


def normalize_domain(domain: str) -> str:
    """Return ``""`` for the default ONNX domain, whatever spelling the source used."""
    domain = domain.strip()
    return DEFAULT_DOMAIN if domain in {"", "ai.onnx"} else domain


def display_domain(domain: str) -> str:
    """The spelling people read in reports: ``ai.onnx`` rather than an empty string."""
    return domain or "ai.onnx"


@dataclass(frozen=True)
class OperatorSupport:
    """One operator a target can run, over an opset range (``None`` = not constrained).

    ``min_opset``/``max_opset`` are compared with the operator's *schema since-version* that the
    model's opset import resolves to, which is how onnxruntime itself matches kernels.
    """

    domain: str
    op_type: str
    min_opset: int | None = None
    max_opset: int | None = None
    note: str = ""

    @property
    def conditions(self) -> str:
        """The parts of the note a reviewer must check by hand (``""`` when there are none).

        Provenance parts (CPU kernel type lists, a documentary table's supported types and
        versions) describe the entry rather than restrict the node, so they are left out.
        """
        if not self.note or self.note.startswith(_INFORMATIONAL_NOTE_PREFIXES[0]):
            return ""
        parts = self.note.split("; ")
        kept = [part for part in parts if not part.startswith(_INFORMATIONAL_NOTE_PREFIXES)]
        return "; ".join(kept)

    @property
    def spelt_differently_in_file(self) -> bool:
        """True when the shipped table spells this operator otherwise (``Argmax``,
        ``ai.onnx.ReduceSum``), so a literal reader such as onnxruntime's usability checker
        does not find it."""
        return _MATCHED_SPELLING in self.note or _DOT_SEPARATOR in self.note

    def covers(self, since_version: int | None) -> bool:
        """True when a node whose schema resolves to ``since_version`` falls in this range."""
        if since_version is None:
            return True
        if self.min_opset is not None and since_version < self.min_opset:
            return False
        return not (self.max_opset is not None and since_version > self.max_opset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op_type": self.op_type,
            "min_opset": self.min_opset,
            "max_opset": self.max_opset,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatorSupport:
        return cls(
            domain=normalize_domain(str(data["domain"])),
            op_type=str(data["op_type"]),
            min_opset=data.get("min_opset"),
            max_opset=data.get("max_opset"),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class TargetProfile:
    """What a hardware target's runtime can execute and the limits a model must respect.

    ``max_tensor_rank`` is an extra constraint some runtimes have (CoreML: rank ≤ 5). The size
    and memory limits are per device class and left ``None`` in the built-in profiles: the
    registry's hardware targets set them with :func:`dataclasses.replace`.

    ``documentary`` is true when the operator list is a vendor's published table rather than
    the runtime itself (see :func:`documentary_profile`): nothing was run on that hardware.
    ``onnx_opset_range`` is the range of default-domain (``ai.onnx``) opset imports the runtime
    documents, when it documents one (TensorRT 10.15: 9 to 24).
    """

    name: str
    execution_provider: str
    runtime: str
    operators: tuple[OperatorSupport, ...]
    static_shapes_only: bool
    quantized_only: bool
    max_model_bytes: int | None
    memory_budget_bytes: int | None
    source: str
    max_tensor_rank: int | None = None
    documentary: bool = False
    onnx_opset_range: tuple[int, int] | None = None
    _index: dict[tuple[str, str], tuple[OperatorSupport, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], list[OperatorSupport]] = {}
        for op in self.operators:
            index.setdefault((normalize_domain(op.domain), op.op_type), []).append(op)
        self._index.update({key: tuple(value) for key, value in index.items()})

    def entries_for(self, *, domain: str, op_type: str) -> tuple[OperatorSupport, ...]:
        """All list entries for an operator, whatever their opset range."""
        return self._index.get((normalize_domain(domain), op_type), ())

    def find(
        self, *, domain: str, op_type: str, since_version: int | None
    ) -> OperatorSupport | None:
        """The entry that covers this operator at this schema version, or ``None``."""
        for entry in self.entries_for(domain=domain, op_type=op_type):
            if entry.covers(since_version):
                return entry
        return None

    def to_dict(self, *, include_operators: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "execution_provider": self.execution_provider,
            "runtime": self.runtime,
            "static_shapes_only": self.static_shapes_only,
            "quantized_only": self.quantized_only,
            "max_model_bytes": self.max_model_bytes,
            "memory_budget_bytes": self.memory_budget_bytes,
            "max_tensor_rank": self.max_tensor_rank,
            "documentary": self.documentary,
            "onnx_opset_range": list(self.onnx_opset_range) if self.onnx_opset_range else None,
            "source": self.source,
            "operator_count": len(self.operators),
        }
        if include_operators:
            data["operators"] = [op.to_dict() for op in self.operators]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetProfile:
        opset_range = data.get("onnx_opset_range")
        return cls(
            name=str(data["name"]),
            execution_provider=str(data["execution_provider"]),
            runtime=str(data["runtime"]),
            operators=tuple(OperatorSupport.from_dict(op) for op in data.get("operators", ())),
            static_shapes_only=bool(data["static_shapes_only"]),
            quantized_only=bool(data["quantized_only"]),
            max_model_bytes=data.get("max_model_bytes"),
            memory_budget_bytes=data.get("memory_budget_bytes"),
            source=str(data["source"]),
            max_tensor_rank=data.get("max_tensor_rank"),
            documentary=bool(data.get("documentary", False)),
            onnx_opset_range=(int(opset_range[0]), int(opset_range[1])) if opset_range else None,
        )


def onnxruntime_version() -> str:
    """The installed onnxruntime version, as the lists' provenance."""
    return importlib.metadata.version("onnxruntime")


# The notes that say the table's spelling was corrected (see _canonical_op_name, _split_domain_op).
_MATCHED_SPELLING = " in the file; matched to"
_DOT_SEPARATOR = " in the file (no ':' separator)"

# Note parts that say where an entry comes from rather than what a node must satisfy. The CPU
# prefix comes first: a CPU note is one list of type constraints, itself joined with "; ".
_INFORMATIONAL_NOTE_PREFIXES = (
    "kernel types",
    "types: ",
    "supported versions ",
    "ONNX versions ",
    "no ONNX version listed",
    "version(s) ",
)


# -- schema resolution --------------------------------------------------------------------------


@functools.cache
def _schema_versions() -> dict[tuple[str, str], tuple[int, ...]]:
    """(domain, op_type) -> sorted since-versions, from onnxruntime's own schema registry.

    onnxruntime's registry (ONNX + contrib + ML schemas) is what decides which kernel a node gets,
    so it is preferred over ``onnx.defs``; ``onnx.defs`` is the fallback for builds without it.
    """
    versions: dict[tuple[str, str], set[int]] = {}
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        schemas: Iterable[Any] = ort_state.get_all_operator_schema()
    except (ImportError, AttributeError):
        import onnx.defs

        schemas = onnx.defs.get_all_schemas_with_history()
    for schema in schemas:
        key = (normalize_domain(schema.domain), schema.name)
        versions.setdefault(key, set()).add(int(schema.since_version))
    return {key: tuple(sorted(value)) for key, value in versions.items()}


def resolve_since_version(*, domain: str, op_type: str, opset: int | None) -> int | None:
    """The schema version a node of ``op_type`` resolves to under the model's opset import.

    Returns ``None`` when onnxruntime knows no schema for the operator at that opset (a custom or
    misspelt operator, or an opset older than the operator's first version).
    """
    known = _schema_versions().get((normalize_domain(domain), op_type))
    if not known or opset is None:
        return None
    eligible = [version for version in known if version <= opset]
    return eligible[-1] if eligible else None


def known_operator(*, domain: str, op_type: str) -> bool:
    """True when onnxruntime's schema registry knows the operator under any version."""
    return (normalize_domain(domain), op_type) in _schema_versions()


# -- onnxruntime CPU kernels --------------------------------------------------------------------


def _short_type(type_str: str) -> str:
    match = re.fullmatch(r"tensor\((\w+)\)", type_str)
    return match.group(1) if match else type_str


def _cpu_operators() -> tuple[tuple[OperatorSupport, ...], str]:
    version = onnxruntime_version()
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        kernel_defs = ort_state.get_all_opkernel_def()
    except (ImportError, AttributeError):
        return _cpu_operators_from_onnx_schemas(version)

    grouped: dict[tuple[str, str, int, int], dict[str, set[str]]] = {}
    for kernel in kernel_defs:
        if kernel.provider != "CPUExecutionProvider":
            continue
        start, end = kernel.version_range
        key = (normalize_domain(kernel.domain), kernel.op_name, int(start), int(end))
        types = grouped.setdefault(key, {})
        for constraint, allowed in kernel.type_constraints.items():
            types.setdefault(constraint, set()).update(_short_type(t) for t in allowed)

    operators = []
    for (domain, op_type, start, end), types in sorted(grouped.items()):
        note = "; ".join(
            f"{constraint} ∈ {{{', '.join(sorted(allowed))}}}"
            for constraint, allowed in sorted(types.items())
        )
        operators.append(
            OperatorSupport(
                domain=domain,
                op_type=op_type,
                min_opset=start,
                max_opset=None if end >= _OPEN_ENDED_OPSET else end,
                note=f"kernel types: {note}" if note else "",
            )
        )
    source = (
        f"onnxruntime {version} CPUExecutionProvider kernel registry "
        "(onnxruntime.capi.onnxruntime_pybind11_state.get_all_opkernel_def(): op, domain, "
        "since-version range, type constraints)"
    )
    return tuple(operators), source


def _cpu_operators_from_onnx_schemas(version: str) -> tuple[tuple[OperatorSupport, ...], str]:
    """Fallback when the build exposes no kernel registry: every ONNX schema version range.

    This over-approximates (onnxruntime may lack a kernel for a schema), hence the source says so.
    """
    import onnx.defs

    by_op: dict[tuple[str, str], list[int]] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        key = (normalize_domain(schema.domain), schema.name)
        by_op.setdefault(key, []).append(int(schema.since_version))
    operators = []
    for (domain, op_type), versions in sorted(by_op.items()):
        ordered = sorted(set(versions))
        for position, start in enumerate(ordered):
            end = ordered[position + 1] - 1 if position + 1 < len(ordered) else None
            operators.append(OperatorSupport(domain, op_type, start, end, ""))
    source = (
        f"FALLBACK: onnx {importlib.metadata.version('onnx')} schemas "
        "(onnx.defs.get_all_schemas_with_history), because onnxruntime "
        f"{version} exposes no get_all_opkernel_def(); over-approximates CPU kernels"
    )
    return tuple(operators), source


# -- onnxruntime mobile helper tables -----------------------------------------------------------


def mobile_ops_file_text(file_name: str) -> str:
    """Read one of the operator tables shipped inside the installed onnxruntime wheel."""
    return importlib.resources.files(_MOBILE_HELPERS).joinpath(file_name).read_text("utf-8")


def _canonical_op_name(domain: str, written: str) -> tuple[str, str]:
    """Map the table's spelling to onnxruntime's schema name; explain any correction.

    The shipped tables have typos (``ai.onnx:Argmax`` in the MLProgram list). ONNX operator names
    are case-sensitive, so a literal match would wrongly flag every ``ArgMax`` node; the intent is
    unambiguous, so we use the schema's spelling and keep a note saying what the file wrote.
    """
    if known_operator(domain=domain, op_type=written):
        return written, ""
    lowered = written.lower()
    matches = sorted(
        op
        for (known_domain, op) in _schema_versions()
        if known_domain == domain
        if op.lower() == lowered
    )
    if len(matches) == 1:
        return matches[0], f"listed as '{written}'{_MATCHED_SPELLING} '{matches[0]}'"
    return written, f"'{written}' is not an operator name onnxruntime knows"


def _split_domain_op(cell: str) -> tuple[str, str, str]:
    """Split ``domain:Op``; tolerate ``domain.Op`` (the NeuralNetwork list writes
    ``ai.onnx.ReduceSum``), returning a note when the separator was not ``:``."""
    if ":" in cell:
        domain, op_type = cell.rsplit(":", 1)
        return domain, op_type, ""
    domain, _, op_type = cell.rpartition(".")
    return domain, op_type, f"written '{cell}'{_DOT_SEPARATOR}"


def parse_mobile_ops_table(text: str) -> tuple[OperatorSupport, ...]:
    """Parse an onnxruntime ``*_supported_ops.md`` table (``|domain:Op|Note|`` rows).

    HTML line breaks in the note become "; ". Rows that are not operators (header, separator)
    are skipped. Duplicate rows are merged, keeping every note.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|", 1)]
        op_cell = cells[0]
        note = cells[1].strip().strip("|").strip() if len(cells) > 1 else ""
        if not re.fullmatch(r"[A-Za-z][\w.]*[:.][A-Za-z]\w*", op_cell) or op_cell == "Operator":
            continue
        domain, written_op, separator_note = _split_domain_op(op_cell)
        domain = normalize_domain(domain)
        op_type, name_note = _canonical_op_name(domain, written_op)
        # "<br/>" separates conditions; "; " keeps them apart on one line.
        conditions = [part.strip().rstrip(".") for part in re.split(r"<br\s*/?>", note)]
        note = "; ".join(part for part in conditions if part)
        notes = [part for part in (note, separator_note, name_note) if part]
        found.setdefault((domain, op_type), []).extend(notes)
    return tuple(
        OperatorSupport(domain=domain, op_type=op_type, note=" | ".join(notes))
        for (domain, op_type), notes in sorted(found.items())
    )


def _mobile_profile(
    *, name: str, execution_provider: str, file_name: str, extra_source: str, max_rank: int | None
) -> TargetProfile:
    version = onnxruntime_version()
    operators = parse_mobile_ops_table(mobile_ops_file_text(file_name))
    return TargetProfile(
        name=name,
        execution_provider=execution_provider,
        runtime=f"onnxruntime {version} ({execution_provider})",
        operators=operators,
        static_shapes_only=True,
        quantized_only=False,
        max_model_bytes=None,
        memory_budget_bytes=None,
        max_tensor_rank=max_rank,
        source=(
            f"onnxruntime {version} wheel: onnxruntime/tools/mobile_helpers/{file_name} "
            f"({len(operators)} operators; no opset ranges in the file, notes kept per operator; "
            f"unsupported nodes fall back to the CPU EP at run time). {extra_source}"
        ),
    )


# -- documentary tables (onnxcheck/data) ---------------------------------------------------------

_DATA_PACKAGE = "onnxcheck"
_DATA_DIR = "data"
TENSORRT_OPS_FILE = "tensorrt_operators.txt"
OPENVINO_OPS_FILE = "openvino_operators.txt"
QNN_OPS_FILE = "qnn_operators.txt"
_HEADER_LINE = re.compile(r"^#\s*([a-z_]+):\s*(.*)$")


@dataclass(frozen=True)
class DocumentaryTable:
    """A vendor's operator table as transcribed in ``onnxcheck/data``.

    ``header`` holds the file's ``# key: value`` lines (``title``, ``url``, ``version``,
    ``commit``, ``completeness``...; a repeated key's values are joined with "; ").
    ``unsupported`` lists the operators the table marks as not supported, by domain.
    """

    file_name: str
    header: Mapping[str, str]
    operators: tuple[OperatorSupport, ...]
    unsupported: Mapping[str, tuple[str, ...]]


def documentary_table_text(file_name: str) -> str:
    """Read one of the operator tables shipped in ``onnxcheck/data`` (package data)."""
    resource = importlib.resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR, file_name)
    return resource.read_text("utf-8")


def _opset_cell(cell: str, *, where: str) -> int | None:
    cell = cell.strip()
    if not cell:
        return None
    if not cell.isdigit():
        raise ValueError(f"{where}: opset {cell!r} is not a whole number")
    return int(cell)


def parse_documentary_table(text: str, *, file_name: str = "<text>") -> DocumentaryTable:
    """Parse ``domain | op_type | min_opset | max_opset | note`` rows and ``# key: value`` headers.

    The note is the rest of the line, so it may itself hold ``|``. A malformed row raises
    ``ValueError``: the files ship with the code, and a typo must fail the tests, not hide an
    operator.
    """
    header: dict[str, list[str]] = {}
    unsupported: dict[str, list[str]] = {}
    found: dict[tuple[str, str], OperatorSupport] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        where = f"{file_name}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            match = _HEADER_LINE.match(line)
            if match is None:
                continue
            key, value = match.groups()
            if key == "unsupported":
                domain, _, names = value.partition(":") if ":" in value else ("ai.onnx", "", value)
                unsupported.setdefault(normalize_domain(domain), []).extend(
                    name.strip() for name in names.split(",") if name.strip()
                )
            else:
                header.setdefault(key, []).append(value.strip())
            continue
        cells = [cell.strip() for cell in line.split("|", 4)]
        if len(cells) < 4 or not cells[1]:
            raise ValueError(f"{where}: expected 'domain | op_type | min | max | note'")
        domain = normalize_domain(cells[0])
        op_type, name_note = _canonical_op_name(domain, cells[1])
        key = (domain, op_type)
        if key in found:
            raise ValueError(f"{where}: {display_domain(domain)}:{op_type} is listed twice")
        note = cells[4] if len(cells) > 4 else ""
        found[key] = OperatorSupport(
            domain=domain,
            op_type=op_type,
            min_opset=_opset_cell(cells[2], where=where),
            max_opset=_opset_cell(cells[3], where=where),
            note="; ".join(part for part in (note, name_note) if part),
        )
    return DocumentaryTable(
        file_name=file_name,
        header={key: "; ".join(values) for key, values in header.items()},
        operators=tuple(found[key] for key in sorted(found)),
        unsupported={domain: tuple(names) for domain, names in unsupported.items()},
    )


def load_documentary_table(file_name: str) -> DocumentaryTable:
    """One shipped table, parsed."""
    return parse_documentary_table(documentary_table_text(file_name), file_name=file_name)


def _opset_range(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    low, _, high = value.partition("-")
    return int(low), int(high)


def documentary_source(table: DocumentaryTable) -> str:
    """The provenance sentence a documentary profile carries: document, version, commit, scope.

    The first "; "-separated part names the document and version; reports quote it.
    """
    header = table.header
    basis = f"{header['title']}, {header['version']}"
    if "; " in basis:
        raise ValueError(f"{table.file_name}: title and version must not contain '; '")
    parts = [
        f"documentary: {basis}",
        f"read from {header['url']}",
        f"commit {header['commit']}",
        f"transcribed into onnxcheck/data/{table.file_name} ({len(table.operators)} operators)",
        f"completeness: {header['completeness']}",
    ]
    parts += [
        f"{key}: {header[key]}"
        for key in ("types", "versions", "static_shapes", "quantized")
        if key in header
    ]
    parts.append("not run on this hardware: the execution provider is not installed")
    return "; ".join(parts)


def documentary_profile(
    *,
    name: str,
    file_name: str,
    runtime: str,
    static_shapes_only: bool,
    quantized_only: bool,
    extra_source: str = "",
) -> TargetProfile:
    """A profile built from a vendor's published operator table (``documentary=True``)."""
    table = load_documentary_table(file_name)
    source = documentary_source(table)
    return TargetProfile(
        name=name,
        execution_provider=table.header["execution_provider"],
        runtime=runtime,
        operators=table.operators,
        static_shapes_only=static_shapes_only,
        quantized_only=quantized_only,
        max_model_bytes=None,
        memory_budget_bytes=None,
        source=f"{source}; {extra_source}" if extra_source else source,
        documentary=True,
        onnx_opset_range=_opset_range(table.header.get("model_opset_range")),
    )


def _documentary_profiles() -> tuple[TargetProfile, ...]:
    return (
        # TensorRT builds engines with dynamic shapes through optimisation profiles, and runs
        # FP32/FP16/BF16 models; INT8/FP8/INT4 need QDQ quantization but are not required.
        documentary_profile(
            name="tensorrt",
            file_name=TENSORRT_OPS_FILE,
            runtime="TensorRT 10.15 (documentary: published table, not installed)",
            static_shapes_only=False,
            quantized_only=False,
        ),
        # The OpenVINO frontend takes dynamic shapes (its NPU device needs them fixed, which a
        # hardware target for an NPU sets with dataclasses.replace).
        documentary_profile(
            name="openvino",
            file_name=OPENVINO_OPS_FILE,
            runtime="OpenVINO ONNX frontend (documentary: published table, not installed)",
            static_shapes_only=False,
            quantized_only=False,
        ),
        # QNN EP refuses dynamic shapes on every backend, hence static_shapes_only. Whether the
        # HTP (NPU) backend needs a quantized model depends on the document's version (older
        # onnxruntime pages: quantized only; QNN EP 2.5.0: float too), so the profile does not
        # require it and says so; a hardware target for an older HTP stack sets quantized_only.
        documentary_profile(
            name="qnn",
            file_name=QNN_OPS_FILE,
            runtime="QNN EP 2.5.0, QAIRT 2.49.40 (documentary: published table, not installed)",
            static_shapes_only=True,
            quantized_only=False,
            extra_source="quantized_only=False: QNN EP 2.5.0 documents float and quantized "
            "models on HTP; onnxruntime.ai's earlier QNN page (QNN 2.22.x) says the HTP backend "
            "only supports quantized models, and HTP MatMul lists uint8/uint16 inputs only",
        ),
    )


def builtin_profiles() -> list[TargetProfile]:
    """The hardware target profiles OpsHero knows out of the box.

    CPU (the validation worker's own runtime), NNAPI (Android NPU/DSP/GPU), CoreML MLProgram and
    CoreML NeuralNetwork (Apple Neural Engine/GPU/CPU), read from the installed onnxruntime and
    listed first; then the documentary profiles TensorRT, OpenVINO and QNN, read from the vendors'
    published tables in ``onnxcheck/data``. The profiles are built once per process (the lists
    only change with the installed onnxruntime or the shipped tables); the list is a fresh copy.
    """
    return list(_builtin_profiles())


@functools.cache
def _builtin_profiles() -> tuple[TargetProfile, ...]:
    version = onnxruntime_version()
    cpu_ops, cpu_source = _cpu_operators()
    return (
        TargetProfile(
            name="cpu",
            execution_provider="CPUExecutionProvider",
            runtime=f"onnxruntime {version} (CPUExecutionProvider)",
            operators=cpu_ops,
            static_shapes_only=False,
            quantized_only=False,
            max_model_bytes=None,
            memory_budget_bytes=None,
            source=cpu_source,
        ),
        _mobile_profile(
            name="nnapi",
            execution_provider="NnapiExecutionProvider",
            file_name=NNAPI_OPS_FILE,
            extra_source=_STATIC_SHAPES_SOURCE,
            max_rank=None,
        ),
        _mobile_profile(
            name="coreml-mlprogram",
            execution_provider="CoreMLExecutionProvider",
            file_name=COREML_MLPROGRAM_OPS_FILE,
            extra_source=f"{_STATIC_SHAPES_SOURCE}; max rank 5 per usability_checker.py",
            max_rank=_COREML_MAX_RANK,
        ),
        _mobile_profile(
            name="coreml-neuralnetwork",
            execution_provider="CoreMLExecutionProvider",
            file_name=COREML_NEURALNETWORK_OPS_FILE,
            extra_source=f"{_STATIC_SHAPES_SOURCE}; max rank 5 per usability_checker.py",
            max_rank=_COREML_MAX_RANK,
        ),
        *_documentary_profiles(),
    )


def builtin_profile(name: str) -> TargetProfile:
    """One built-in profile by name (``cpu``, ``nnapi``, ``coreml-mlprogram``, ``tensorrt``...)."""
    for profile in builtin_profiles():
        if profile.name == name:
            return profile
    known = ", ".join(profile.name for profile in builtin_profiles())
    raise KeyError(f"no built-in target profile {name!r}; known: {known}")
