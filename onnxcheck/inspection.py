"""Safe inspection of an uploaded ONNX file: refuse bad uploads precisely, then describe the model.

An upload is untrusted bytes. Before any library is allowed to parse it, load it, or follow its
external-data references, this module checks what can be checked cheaply and without allocating
memory driven by the file's own claims:

1. size on disk (a 2 GB file is refused by ``stat`` alone, before one byte is read);
2. the file's leading bytes (PNG, ZIP, text, ORT-format... are named, not just "invalid");
3. the protobuf wire format of the top-level ``ModelProto`` fields, walked with seeks only: a
   field whose declared length runs past the end of the file means the upload was truncated;
4. after parsing (without external data), every tensor's declared dimensions arithmetically,
   and every external-data reference's location, offset and length, before anything reads it.

External data is confined to the upload. A single ``.onnx`` file may reference nothing outside
itself: on the server it sits in a temporary directory next to other files, and accepting a
location there would let an upload probe which files exist and how large they are. So without an
``external_root`` every external-data reference is refused before the filesystem is consulted.
A model with external weights comes as a bundle (``.zip``/``.tar``) that the caller unpacks into
a directory of its own and passes as ``external_root``: locations must then be relative, free of
``..``, resolve (symlinks followed) strictly inside that directory to the very path they name (no
symlink anywhere), and be regular files; offsets and lengths are checked against those files.
A location that leaves the bundle gets one message whatever lies outside, so no refusal says
anything about a file that is not part of the upload.

Only then is metadata extracted. Every refusal is a :class:`ModelRejected` carrying a stable
machine ``code`` (the API maps it to a 4xx) and a human ``message`` that says what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import posixpath
import re
import stat
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

from onnxcheck.operators import display_domain, normalize_domain

DEFAULT_MAX_MODEL_BYTES = 500 * 1024 * 1024
"""Upload limit (500 MiB) applied to the model file plus its external data."""

DEFAULT_MAX_TENSOR_ELEMENTS = 2**30
"""Largest element count any single declared tensor may have (4 GiB of float32)."""


class OnnxCheckError(Exception):
    """A refusal with a stable ``code`` for machines and a ``message`` for people."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ModelRejected(OnnxCheckError):
    """The uploaded file cannot be accepted as an ONNX model (see module docstring)."""


# -- plain data ---------------------------------------------------------------------------------

Dim = int | str | None
"""A dimension: ``int`` static size, ``str`` named dynamic axis, ``None`` unnamed dynamic axis."""

_PLACEHOLDER_AXIS_NAMES = frozenset(
    {"", "?", "*", "none", "null", "unk", "unknown", "dynamic", "dyn", "n/a", "na", "undefined"}
)
_NUMERIC_AXIS_NAME = re.compile(r"^[+-]?\d+$")


def meaningful_axis_name(dim: Dim) -> str | None:
    """The name that ties axes together, or ``None`` when ``dim`` is no real name.

    Exporters write "unknown" as an empty ``dim_param``, ``?``, ``-1`` or ``0``: every such axis
    is independent of every other (a ``[-1, 3, '?', '?']`` input takes 48 x 192). Only a
    repeated real name (``batch``, ``height``) says two axes must have the same size.
    """
    if not isinstance(dim, str):
        return None
    text = dim.strip()
    if text.lower() in _PLACEHOLDER_AXIS_NAMES or _NUMERIC_AXIS_NAME.match(text):
        return None
    return dim


def _normal_dim(dim: Any) -> Dim:
    """Stored shapes may hold ``0``/``-1`` from before they were read as dynamic."""
    if isinstance(dim, bool) or (isinstance(dim, int) and dim <= 0):
        return None
    return dim


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output as a deployer needs to know it.

    ``dtype`` is the numpy name of the element type (``float32``, ``int64``, ``bfloat16``...;
    ``str`` for ONNX strings). ``shape`` is ``None`` when the rank is unknown. A dimension is
    dynamic when it has a ``dim_param`` (named), has neither value nor param, or is ``-1``: real
    exporters produce all three, and all three mean "chosen at run time".
    """

    name: str
    kind: str
    dtype: str | None
    shape: tuple[Dim, ...] | None

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        if self.shape is None:
            return ()
        return tuple(axis for axis, dim in enumerate(self.shape) if not isinstance(dim, int))

    @property
    def is_static(self) -> bool:
        return self.shape is not None and not self.dynamic_axes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "shape": list(self.shape) if self.shape is not None else None,
            "dynamic_axes": list(self.dynamic_axes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        shape = data.get("shape")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            dtype=data.get("dtype"),
            shape=tuple(_normal_dim(dim) for dim in shape) if shape is not None else None,
        )


@dataclass(frozen=True)
class ModelMetadata:
    """What the registry shows for an uploaded model version (no tensor data is kept)."""

    file_name: str
    size_bytes: int
    external_data_bytes: int
    external_data_files: tuple[str, ...]
    ir_version: int
    opset_imports: Mapping[str, int]
    producer_name: str
    producer_version: str
    model_domain: str
    model_version: int
    doc_string: str
    metadata_props: Mapping[str, str]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    overridable_initializer_inputs: int
    operator_inventory: Mapping[tuple[str, str], int]
    node_count: int
    local_function_count: int
    has_subgraphs: bool
    parameter_count: int
    initializer_bytes: int
    generated_constant_elements: int
    quantization: str
    quantization_evidence: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return self.size_bytes + self.external_data_bytes

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "size_bytes": self.size_bytes,
            "external_data_bytes": self.external_data_bytes,
            "external_data_files": list(self.external_data_files),
            "ir_version": self.ir_version,
            "opset_imports": [
                {"domain": domain, "version": version}
                for domain, version in sorted(self.opset_imports.items())
            ],
            "producer_name": self.producer_name,
            "producer_version": self.producer_version,
            "model_domain": self.model_domain,
            "model_version": self.model_version,
            "doc_string": self.doc_string,
            "metadata_props": dict(sorted(self.metadata_props.items())),
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "overridable_initializer_inputs": self.overridable_initializer_inputs,
            "operator_inventory": [
                {"domain": domain, "op_type": op_type, "count": count}
                for (domain, op_type), count in sorted(self.operator_inventory.items())
            ],
            "node_count": self.node_count,
            "local_function_count": self.local_function_count,
            "has_subgraphs": self.has_subgraphs,
            "parameter_count": self.parameter_count,
            "initializer_bytes": self.initializer_bytes,
            "generated_constant_elements": self.generated_constant_elements,
            "quantization": self.quantization,
            "quantization_evidence": list(self.quantization_evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        return cls(
            file_name=data["file_name"],
            size_bytes=data["size_bytes"],
            external_data_bytes=data["external_data_bytes"],
            external_data_files=tuple(data["external_data_files"]),
            ir_version=data["ir_version"],
            opset_imports={item["domain"]: item["version"] for item in data["opset_imports"]},
            producer_name=data["producer_name"],
            producer_version=data["producer_version"],
            model_domain=data["model_domain"],
            model_version=data["model_version"],
            doc_string=data["doc_string"],
            metadata_props=dict(data["metadata_props"]),
            inputs=tuple(TensorSpec.from_dict(item) for item in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(item) for item in data["outputs"]),
            overridable_initializer_inputs=data["overridable_initializer_inputs"],
            operator_inventory={
                (item["domain"], item["op_type"]): item["count"]
                for item in data["operator_inventory"]
            },
            node_count=data["node_count"],
            local_function_count=data["local_function_count"],
            has_subgraphs=data["has_subgraphs"],
            parameter_count=data["parameter_count"],
            initializer_bytes=data["initializer_bytes"],
            generated_constant_elements=data["generated_constant_elements"],
            quantization=data["quantization"],
            quantization_evidence=tuple(data["quantization_evidence"]),
        )


# -- small helpers shared with the checks -------------------------------------------------------


def sha256_file(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed so a 500 MB upload never sits in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def numpy_dtype_name(elem_type: int) -> str | None:
    """numpy's name for an ONNX element type (``str`` for strings, ``None`` if undefined)."""
    if elem_type == TensorProto.STRING:
        return "str"
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return None


def dims_of(shape: onnx.TensorShapeProto) -> tuple[Dim, ...]:
    """Read a shape, mapping every spelling of a dynamic dimension to ``str``/``None``."""
    dims: list[Dim] = []
    for dim in shape.dim:
        which = dim.WhichOneof("value")
        if which == "dim_value" and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        elif which == "dim_param" and dim.dim_param:
            dims.append(dim.dim_param)  # kept for display; meaningful_axis_name() judges it
        else:  # no value, empty dim_param, -1 or 0: an unknown size
            dims.append(None)
    return tuple(dims)


def tensor_spec(value_info: onnx.ValueInfoProto) -> TensorSpec:
    """Describe a graph input/output; non-tensor types (sequences, maps) keep their kind."""
    type_proto = value_info.type
    kind = type_proto.WhichOneof("value") or "unknown"
    if kind in {"tensor_type", "sparse_tensor_type"}:
        tensor_type = getattr(type_proto, kind)
        shape = dims_of(tensor_type.shape) if tensor_type.HasField("shape") else None
        return TensorSpec(
            name=value_info.name,
            kind="tensor" if kind == "tensor_type" else "sparse_tensor",
            dtype=numpy_dtype_name(tensor_type.elem_type),
            shape=shape,
        )
    return TensorSpec(name=value_info.name, kind=kind.removesuffix("_type"), dtype=None, shape=None)


def model_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs a caller must feed: IR < 4 models also list every initializer as an input."""
    initializers = {init.name for init in graph.initializer}
    return [item for item in graph.input if item.name not in initializers]


def iter_nodes(graph: onnx.GraphProto, *, prefix: str = "") -> Iterator[tuple[str, onnx.NodeProto]]:
    """Every node, including those inside If/Loop/Scan bodies, with a readable path name."""
    for position, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{position}"
        yield f"{prefix}{name}", node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attribute.g, prefix=f"{prefix}{name}/{attribute.name}/")
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for index, subgraph in enumerate(attribute.graphs):
                    yield from iter_nodes(
                        subgraph, prefix=f"{prefix}{name}/{attribute.name}[{index}]/"
                    )


def _iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _iter_graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _iter_graphs(subgraph)


def iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, TensorProto, bool]]:
    """Every tensor that carries data: initializers, sparse initializers, Constant/attribute
    tensors, in the main graph, subgraphs and local functions.

    Yields ``(where, tensor, is_main_initializer)``; ``where`` names the tensor for messages.
    """

    def attribute_tensors(owner: str, node: onnx.NodeProto) -> Iterator[tuple[str, TensorProto]]:
        for attribute in node.attribute:
            where = f"{owner}{node.name or node.op_type}.{attribute.name}"
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield where, attribute.t
            elif attribute.type == onnx.AttributeProto.TENSORS:
                for tensor in attribute.tensors:
                    yield where, tensor
            elif attribute.type == onnx.AttributeProto.SPARSE_TENSOR:
                yield f"{where}.values", attribute.sparse_tensor.values
                yield f"{where}.indices", attribute.sparse_tensor.indices

    for depth, graph in enumerate(_iter_graphs(model.graph)):
        owner = f"graph '{graph.name}' " if graph.name else "graph "
        for tensor in graph.initializer:
            yield f"{owner}initializer '{tensor.name}'", tensor, depth == 0
        for sparse in graph.sparse_initializer:
            name = sparse.values.name
            yield f"{owner}sparse initializer '{name}' values", sparse.values, False
            yield f"{owner}sparse initializer '{name}' indices", sparse.indices, False
        for node in graph.node:
            for where, tensor in attribute_tensors(owner, node):
                yield where, tensor, False
    for function in model.functions:
        for node in function.node:
            for where, tensor in attribute_tensors(f"function '{function.name}' ", node):
                yield where, tensor, False


def count_parameters(model: onnx.ModelProto) -> int:
    """Weights of the main graph: its initializers plus the tensors of its ``Constant`` nodes.

    Some toolchains export every weight as a ``Constant`` node and no initializer at all; those
    are parameters just the same. Scalars and tiny shape constants (``Reshape`` targets) are
    counted too: they are part of what the model stores, and they are negligible.
    """
    total = sum(element_count(tensor.dims) for tensor in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type != "Constant" or normalize_domain(node.domain) != "":
            continue
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                total += element_count(attribute.t.dims)
            elif attribute.type == onnx.AttributeProto.SPARSE_TENSOR:
                total += element_count(attribute.sparse_tensor.values.dims)
            elif attribute.type in (onnx.AttributeProto.FLOATS, onnx.AttributeProto.INTS):
                total += len(attribute.floats) + len(attribute.ints)
    return total


def element_count(dims: Any) -> int:
    """Product of dimensions in Python integers: never overflows, never allocates."""
    return math.prod(int(dim) for dim in dims)


# -- step 1-3: bytes on disk --------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF8", 0, "a GIF image"),
    (b"%PDF", 0, "a PDF document"),
    (b"PK\x03\x04", 0, "a ZIP archive (PyTorch .pt, Keras, .npz...)"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"\x7fELF", 0, "an executable (ELF)"),
    (b"\x89HDF", 0, "an HDF5 file (Keras .h5?)"),
    (b"ORTM", 4, "an onnxruntime ORT-format model (upload the .onnx it was converted from)"),
    (b"TFL3", 4, "a TensorFlow Lite model"),
)


def sniff_file_type(head: bytes) -> str | None:
    """Name a well-known non-ONNX file type from its first bytes, if it is one."""
    for signature, offset, label in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return label
    if head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}:
        return "a Python pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(char.isprintable() or char in "\r\n\t" for char in text):
        return "a text file"
    return None


_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LENGTH, _WIRE_FIXED32 = 0, 1, 2, 5


class _Truncated(Exception):
    pass


def _read_varint(handle: BinaryIO) -> int:
    result = 0
    for shift in range(0, 70, 7):
        byte = handle.read(1)
        if not byte:
            raise _Truncated
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
    raise ValueError("varint longer than 10 bytes")


def _expected_wire_types() -> dict[int, set[int]]:
    """Top-level ModelProto fields and the wire types their declared types allow."""
    descriptor_type = FieldDescriptor
    allowed: dict[int, set[int]] = {}
    for number, field_descriptor in onnx.ModelProto.DESCRIPTOR.fields_by_number.items():
        if field_descriptor.type in {
            descriptor_type.TYPE_MESSAGE,
            descriptor_type.TYPE_STRING,
            descriptor_type.TYPE_BYTES,
        }:
            allowed[number] = {_WIRE_LENGTH}
        elif field_descriptor.type in {descriptor_type.TYPE_DOUBLE, descriptor_type.TYPE_FIXED64}:
            allowed[number] = {_WIRE_FIXED64, _WIRE_LENGTH}
        elif field_descriptor.type in {descriptor_type.TYPE_FLOAT, descriptor_type.TYPE_FIXED32}:
            allowed[number] = {_WIRE_FIXED32, _WIRE_LENGTH}
        else:
            allowed[number] = {_WIRE_VARINT, _WIRE_LENGTH}  # repeated scalars may be packed
    return allowed


def _walk_model_fields(path: Path, size: int, file_label: str) -> set[int]:
    """Walk the top-level protobuf fields with seeks only; return the field numbers seen.

    ONNX writers serialise ``ir_version`` (field 1, a small varint) first, so a first byte other
    than ``0x08`` means "not ONNX". After that, a field whose length runs past end-of-file is
    truncation, and an unknown field or wrong wire type is corruption.
    """
    allowed = _expected_wire_types()
    seen: set[int] = set()
    with open(path, "rb", buffering=io.DEFAULT_BUFFER_SIZE) as handle:
        try:
            first_tag = _read_varint(handle)
            ir_version = _read_varint(handle) if first_tag == (1 << 3) | _WIRE_VARINT else -1
        except (_Truncated, ValueError):
            first_tag, ir_version = -1, -1
        if first_tag != (1 << 3) | _WIRE_VARINT or not 1 <= ir_version <= 64:
            raise ModelRejected(
                "not_onnx",
                f"{file_label} is not an ONNX model: it does not start with an ONNX IR version.",
            )
        seen.add(1)
        while True:
            offset = handle.tell()
            if offset == size:
                return seen
            try:
                tag = _read_varint(handle)
                number, wire_type = tag >> 3, tag & 0x7
                if number not in allowed or wire_type not in allowed[number]:
                    raise ModelRejected(
                        "corrupt",
                        f"{file_label} is damaged: invalid protobuf field {number} (wire type "
                        f"{wire_type}) at byte {offset}.",
                        offset=offset,
                    )
                if wire_type == _WIRE_VARINT:
                    _read_varint(handle)
                    end = handle.tell()
                elif wire_type == _WIRE_LENGTH:
                    length = _read_varint(handle)
                    end = handle.tell() + length
                else:
                    end = handle.tell() + (8 if wire_type == _WIRE_FIXED64 else 4)
            except _Truncated:
                end = size + 1
                number = -1
            except ValueError as exc:
                raise ModelRejected(
                    "corrupt", f"{file_label} is damaged at byte {offset}: {exc}.", offset=offset
                ) from exc
            if end > size:
                field_name = (
                    onnx.ModelProto.DESCRIPTOR.fields_by_number[number].name
                    if number in allowed
                    else "a field"
                )
                raise ModelRejected(
                    "truncated",
                    f"{file_label} is truncated: {field_name} starting at byte {offset} needs "
                    f"{end - size} more bytes than the file's {size} bytes.",
                    offset=offset,
                    size_bytes=size,
                )
            seen.add(number)
            handle.seek(end)


# -- step 4: declared dimensions and external data ----------------------------------------------

_SUB_BYTE_BITS = {
    TensorProto.INT4: 4,
    TensorProto.UINT4: 4,
    TensorProto.FLOAT4E2M1: 4,
}
for _name, _bits in (("INT2", 2), ("UINT2", 2), ("FLOAT6E2M3", 6), ("FLOAT6E3M2", 6)):
    if hasattr(TensorProto, _name):
        _SUB_BYTE_BITS[getattr(TensorProto, _name)] = _bits

_TYPED_FIELD = {
    TensorProto.FLOAT: ("float_data", 1),
    TensorProto.COMPLEX64: ("float_data", 2),
    TensorProto.DOUBLE: ("double_data", 1),
    TensorProto.COMPLEX128: ("double_data", 2),
    TensorProto.INT64: ("int64_data", 1),
    TensorProto.UINT32: ("uint64_data", 1),
    TensorProto.UINT64: ("uint64_data", 1),
    TensorProto.STRING: ("string_data", 1),
}


def tensor_nbytes(data_type: int, elements: int) -> int | None:
    """Bytes the tensor's raw data must hold, or ``None`` for strings/unknown types."""
    if data_type in _SUB_BYTE_BITS:
        return math.ceil(elements * _SUB_BYTE_BITS[data_type] / 8)
    if data_type in {TensorProto.STRING, TensorProto.UNDEFINED}:
        return None
    try:
        return elements * np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def _check_inline_data(where: str, tensor: TensorProto, elements: int) -> None:
    expected = tensor_nbytes(tensor.data_type, elements)
    if tensor.raw_data:
        carried = len(tensor.raw_data)
        too_small = expected is not None and carried < expected
        mismatch = expected is not None and tensor.data_type not in _SUB_BYTE_BITS
        if too_small or (mismatch and carried != expected):
            raise ModelRejected(
                "tensor_data_mismatch",
                f"{where} declares {elements} elements ({expected} bytes) but carries "
                f"{carried} bytes of data.",
                tensor=where,
            )
        return
    field_name, per_element = _TYPED_FIELD.get(tensor.data_type, ("int32_data", 1))
    carried = len(getattr(tensor, field_name))
    wanted = elements * per_element
    if tensor.data_type in _SUB_BYTE_BITS:
        wanted = math.ceil(elements * _SUB_BYTE_BITS[tensor.data_type] / 32)
        if carried >= wanted:
            return
    if carried != wanted:
        raise ModelRejected(
            "tensor_data_mismatch",
            f"{where} declares {elements} elements but carries {carried} values.",
            tensor=where,
        )


def _is_outside(location: str) -> bool:
    """True for empty, absolute (POSIX or Windows), backslashed, NUL-carrying or ``..`` paths.

    Decided on the string alone: nothing on disk is consulted.
    """
    if not location or "\x00" in location or "\\" in location:
        return True
    if location.startswith("/") or re.match(r"^[A-Za-z]:", location):
        return True
    return ".." in location.split("/") or posixpath.isabs(location)


def _external_data_not_allowed(where: str) -> ModelRejected:
    return ModelRejected(
        "external_data_not_allowed",
        f"{where} keeps its data in an external file, but a single .onnx upload may reference "
        "no file outside itself. Upload a model with external weights as one .zip or .tar "
        "bundle holding the .onnx file and its data files.",
        tensor=where,
    )


def _outside_upload(where: str, location: str) -> ModelRejected:
    # One message for every location that leaves the bundle or passes through a symlink, decided
    # before (and whatever) the filesystem says about the place it names.
    return ModelRejected(
        "external_data_outside_upload",
        f"{where} points its external data at {location!r}, which is not a file inside the "
        "uploaded bundle; locations must be relative paths to regular files inside it (no '..', "
        "no absolute paths, no symbolic links).",
        tensor=where,
        location=location,
    )


def _check_external_data(
    where: str, tensor: TensorProto, elements: int, *, model_dir: Path, root: Path
) -> tuple[Path, int, int]:
    """Validate one external-data reference of a bundle; return (file, byte length, file size).

    The location is resolved as onnx and onnxruntime will resolve it (against the model file's
    directory). Every check that touches the disk runs only once the path is known to be inside
    ``root``, so no answer depends on anything outside the bundle.
    """
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    if _is_outside(location):
        raise _outside_upload(where, location)
    base = Path(os.path.realpath(model_dir))
    named = base.joinpath(*(part for part in location.split("/") if part not in {"", "."}))
    # realpath does not require the path to exist; a symlink anywhere below base makes the
    # resolved path differ from the named one, whether it points inside or outside the bundle.
    if Path(os.path.realpath(named)) != named or not named.is_relative_to(root) or named == root:
        raise _outside_upload(where, location)
    try:
        status = named.lstat()
    except FileNotFoundError as exc:
        raise ModelRejected(
            "external_data_missing",
            f"{where} needs external data file {location!r}, which is not in the bundle.",
            tensor=where,
            location=location,
        ) from exc
    except OSError as exc:  # e.g. a path component that is a regular file
        raise _outside_upload(where, location) from exc
    if not stat.S_ISREG(status.st_mode):
        raise ModelRejected(
            "external_data_invalid",
            f"{where} points its external data at {location!r}, which is not a regular file.",
            tensor=where,
            location=location,
        )
    file_size = status.st_size
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else file_size - offset
    except ValueError as exc:
        raise ModelRejected(
            "external_data_invalid",
            f"{where} has a non-numeric external-data offset or length.",
            tensor=where,
        ) from exc
    expected = tensor_nbytes(tensor.data_type, elements)
    if offset < 0 or length < 0 or offset + length > file_size:
        raise ModelRejected(
            "external_data_invalid",
            f"{where} reads bytes {offset}..{offset + length} of {location!r}, which has only "
            f"{file_size} bytes.",
            tensor=where,
            location=location,
        )
    if expected is not None and length != expected:
        raise ModelRejected(
            "external_data_invalid",
            f"{where} declares {elements} elements ({expected} bytes) but its external data "
            f"is {length} bytes.",
            tensor=where,
        )
    return named, length, file_size


def _check_value_infos(model: onnx.ModelProto, max_elements: int) -> None:
    for graph in _iter_graphs(model.graph):
        for value in [*graph.input, *graph.output, *graph.value_info]:
            if not value.type.HasField("tensor_type"):
                continue
            tensor_type = value.type.tensor_type
            if not tensor_type.HasField("shape"):
                continue
            for dim in tensor_type.shape.dim:
                if dim.WhichOneof("value") == "dim_value" and dim.dim_value < -1:
                    raise ModelRejected(
                        "invalid_model",
                        f"'{value.name}' declares the impossible dimension {dim.dim_value}.",
                        tensor=value.name,
                    )
            static = [d for d in dims_of(tensor_type.shape) if isinstance(d, int)]
            count = element_count(static)
            if count > max_elements:
                raise ModelRejected(
                    "absurd_dimensions",
                    f"'{value.name}' declares shape {list(dims_of(tensor_type.shape))}: "
                    f"{count:.3g} elements is more than the {max_elements:.3g} allowed.",
                    tensor=value.name,
                    elements=count,
                )


def _constant_values(model: onnx.ModelProto) -> dict[str, TensorProto]:
    """Small constant tensors by name (initializers and Constant outputs) for shape arithmetic."""
    values: dict[str, TensorProto] = {}
    for graph in _iter_graphs(model.graph):
        for tensor in graph.initializer:
            values[tensor.name] = tensor
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                        values[node.output[0]] = attribute.t
    return values


def generated_constant_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Output shapes of ``ConstantOfShape`` nodes whose shape input is a constant.

    Some exporters ship weights as ``ConstantOfShape`` (the onnx wheel's ``light_*`` models):
    onnxruntime materialises them at session creation, so they count toward memory and must be
    bounded before a session is ever created.
    """
    constants = _constant_values(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for graph in _iter_graphs(model.graph):
        for node in graph.node:
            if node.op_type != "ConstantOfShape" or not node.input or not node.output:
                continue
            shape_tensor = constants.get(node.input[0])
            if shape_tensor is None or element_count(shape_tensor.dims) > 64:
                continue
            if shape_tensor.data_location == TensorProto.EXTERNAL:
                continue
            try:
                values = onnx.numpy_helper.to_array(shape_tensor).astype(np.int64).ravel()
            except (ValueError, TypeError):
                continue
            shapes[node.output[0]] = tuple(int(value) for value in values)
    return shapes


def _check_generated_constants(model: onnx.ModelProto, max_elements: int) -> int:
    total = 0
    for name, shape in generated_constant_shapes(model).items():
        if any(dim < 0 for dim in shape):
            raise ModelRejected(
                "invalid_model",
                f"ConstantOfShape output '{name}' has negative dimensions {list(shape)}.",
                tensor=name,
            )
        count = element_count(shape)
        if count > max_elements:
            raise ModelRejected(
                "absurd_dimensions",
                f"ConstantOfShape output '{name}' would create {list(shape)} = {count:.3g} "
                f"elements, more than the {max_elements:.3g} allowed.",
                tensor=name,
                elements=count,
            )
        total += count
    return total


# -- quantization detection ---------------------------------------------------------------------

_QLINEAR_PREFIX = "QLinear"
_INTEGER_OPS = {
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeLSTM",
}
_FLOAT_TYPES = {
    TensorProto.FLOAT: "fp32",
    TensorProto.FLOAT16: "fp16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.DOUBLE: "fp64",
}


def detect_quantization(model: onnx.ModelProto) -> tuple[str, tuple[str, ...]]:
    """Label the model's numeric format and say why.

    Labels: ``int8-qdq`` (QuantizeLinear/DequantizeLinear pairs), ``int8-qlinear`` (QLinear*
    operators), ``int8-dynamic`` (MatMulInteger/DynamicQuantizeLinear family: weights int8,
    activations quantized at run time), ``int8-weight-only`` (DequantizeLinear on weights only),
    ``fp16``/``bf16``/``fp32``/``fp64`` (dominant float type of the weights), and ``mixed`` when
    more than one quantization family, or a quantization family plus fp16 weights, is present.
    ``int4-``/``int16-`` replace ``int8-`` when the zero points say so.
    """
    ops = Counter(node.op_type for _, node in iter_nodes(model.graph))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    evidence: list[str] = []
    families: list[str] = []

    zero_point_types = {
        initializers[node.input[2]].data_type
        for _, node in iter_nodes(model.graph)
        if node.op_type in {"QuantizeLinear", "DequantizeLinear"}
        and len(node.input) > 2
        and node.input[2] in initializers
    }
    width = "int8"
    if zero_point_types & {TensorProto.INT4, TensorProto.UINT4}:
        width = "int4"
    elif zero_point_types & {TensorProto.INT16, TensorProto.UINT16}:
        width = "int16"

    if ops["QuantizeLinear"] and ops["DequantizeLinear"]:
        families.append(f"{width}-qdq")
        evidence.append(
            f"{ops['QuantizeLinear']} QuantizeLinear / {ops['DequantizeLinear']} DequantizeLinear"
        )
    elif ops["DequantizeLinear"]:
        families.append(f"{width}-weight-only")
        evidence.append(f"{ops['DequantizeLinear']} DequantizeLinear without QuantizeLinear")
    qlinear = sum(count for op, count in ops.items() if op.startswith(_QLINEAR_PREFIX))
    if qlinear:
        families.append("int8-qlinear")
        evidence.append(f"{qlinear} QLinear* operators")
    integer = sum(ops[op] for op in _INTEGER_OPS)
    if integer:
        families.append("int8-dynamic")
        names = ", ".join(sorted(_INTEGER_OPS & set(ops)))
        evidence.append(f"{integer} integer operators ({names})")

    float_elements: Counter[str] = Counter()
    for _, tensor, _ in iter_tensors(model):
        label = _FLOAT_TYPES.get(tensor.data_type)
        if label:
            float_elements[label] += element_count(tensor.dims)
    # Weights generated at load time (ConstantOfShape) count with their value's type.
    generated = generated_constant_shapes(model)
    for _, node in iter_nodes(model.graph):
        if node.op_type == "ConstantOfShape" and node.output and node.output[0] in generated:
            value_type = next(
                (attr.t.data_type for attr in node.attribute if attr.name == "value"),
                TensorProto.FLOAT,
            )
            label = _FLOAT_TYPES.get(value_type)
            if label:
                float_elements[label] += element_count(generated[node.output[0]])
    total_float = sum(float_elements.values())
    if total_float:
        shares = ", ".join(
            f"{label} {count / total_float:.0%}" for label, count in float_elements.most_common()
        )
        evidence.append(f"float weights: {shares}")
    dominant_float = float_elements.most_common(1)[0][0] if float_elements else "fp32"
    half_elements = float_elements["fp16"] + float_elements["bf16"]
    half_share = half_elements / total_float if total_float else 0.0

    if len(families) > 1 or (families and half_share >= 0.5):
        return "mixed", tuple(evidence)
    if families:
        return families[0], tuple(evidence)
    if total_float and 0.05 < half_share < 0.95:
        return "mixed", tuple(evidence)
    return dominant_float, tuple(evidence)


# -- the public entry points --------------------------------------------------------------------


@dataclass
class _CheckedModel:
    model: onnx.ModelProto
    metadata: ModelMetadata
    generated_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _check_file(path: Path, max_bytes: int) -> int:
    label = f"'{path.name}'"
    try:
        status = path.stat()
    except FileNotFoundError as exc:
        raise ModelRejected("file_missing", f"{label} does not exist.") from exc
    if not path.is_file():
        raise ModelRejected("file_missing", f"{label} is not a regular file.")
    if status.st_size == 0:
        raise ModelRejected("empty_file", f"{label} is empty (0 bytes).")
    if status.st_size > max_bytes:
        raise ModelRejected(
            "too_large",
            f"{label} is {status.st_size:,} bytes; the limit is {max_bytes:,} bytes.",
            size_bytes=status.st_size,
            limit_bytes=max_bytes,
        )
    with open(path, "rb") as handle:
        head = handle.read(4096)
    sniffed = sniff_file_type(head)
    if sniffed is not None and head[:1] != b"\x08":
        raise ModelRejected(
            "not_onnx", f"{label} is {sniffed}, not an ONNX model.", detected=sniffed
        )
    return status.st_size


def load_checked_model(
    *,
    path: str | os.PathLike[str],
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    external_root: str | os.PathLike[str] | None = None,
) -> tuple[onnx.ModelProto, ModelMetadata]:
    """Run every safety check, then return the parsed graph (external data NOT loaded) and its
    metadata. Raises :class:`ModelRejected`. Later steps use this instead of ``onnx.load``.

    ``external_root`` is as for :func:`inspect_model`.
    """
    checked = _load_checked(Path(path), max_bytes, max_tensor_elements, external_root)
    return checked.model, checked.metadata


def inspect_model(
    *,
    path: str | os.PathLike[str],
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    external_root: str | os.PathLike[str] | None = None,
) -> ModelMetadata:
    """Refuse a bad upload with a specific :class:`ModelRejected`, or describe the model.

    ``max_bytes`` bounds the model file plus all its external data; ``max_tensor_elements``
    bounds every declared tensor (inputs, outputs, initializers, generated constants).
    ``external_root`` is ``None`` for a single ``.onnx`` upload, which may then reference no
    external data at all (``external_data_not_allowed``); for a bundle it is the directory the
    bundle was unpacked into, which must contain ``path`` and every external-data file.
    """
    return _load_checked(Path(path), max_bytes, max_tensor_elements, external_root).metadata


def _bundle_root(path: Path, external_root: str | os.PathLike[str] | None) -> Path | None:
    """The bundle directory, resolved; the model file must lie inside it (a caller's contract,
    not an upload's fault, hence ``ValueError``)."""
    if external_root is None:
        return None
    root = Path(os.path.realpath(external_root))
    if not Path(os.path.realpath(path.parent)).is_relative_to(root):
        raise ValueError("the model file must lie inside external_root (the unpacked bundle)")
    return root


def _load_checked(
    path: Path,
    max_bytes: int,
    max_tensor_elements: int,
    external_root: str | os.PathLike[str] | None = None,
) -> _CheckedModel:
    root = _bundle_root(path, external_root)
    size = _check_file(path, max_bytes)
    seen = _walk_model_fields(path, size, f"'{path.name}'")
    if 7 not in seen:
        raise ModelRejected("invalid_model", f"'{path.name}' has no graph.")
    try:
        model = onnx.load_model(os.fspath(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelRejected("corrupt", f"'{path.name}' could not be parsed as ONNX: {exc}") from exc
    if not model.opset_import:
        raise ModelRejected(
            "invalid_model", f"'{path.name}' declares no opset_import (truncated export?)."
        )

    external_files: dict[Path, int] = {}
    initializer_bytes = 0
    for where, tensor, is_main_initializer in iter_tensors(model):
        if any(dim < 0 for dim in tensor.dims):
            raise ModelRejected(
                "invalid_model", f"{where} has negative dimensions {list(tensor.dims)}."
            )
        elements = element_count(tensor.dims)
        if elements > max_tensor_elements:
            raise ModelRejected(
                "absurd_dimensions",
                f"{where} declares dimensions {list(tensor.dims)}: {elements:.3g} elements is "
                f"more than the {max_tensor_elements:.3g} allowed.",
                tensor=where,
                elements=elements,
            )
        if tensor.data_location == TensorProto.EXTERNAL:
            if root is None:
                raise _external_data_not_allowed(where)
            target, length, file_size = _check_external_data(
                where, tensor, elements, model_dir=path.parent, root=root
            )
            external_files[target] = file_size
            nbytes = length
        else:
            _check_inline_data(where, tensor, elements)
            nbytes = tensor_nbytes(tensor.data_type, elements) or len(tensor.raw_data)
        if is_main_initializer:
            initializer_bytes += nbytes

    parameter_count = count_parameters(model)
    external_bytes = sum(external_files.values())
    if size + external_bytes > max_bytes:
        raise ModelRejected(
            "too_large",
            f"'{path.name}' with its external data is {size + external_bytes:,} bytes; the "
            f"limit is {max_bytes:,} bytes.",
            size_bytes=size + external_bytes,
            limit_bytes=max_bytes,
        )
    _check_value_infos(model, max_tensor_elements)
    generated_shapes = generated_constant_shapes(model)
    generated = _check_generated_constants(model, max_tensor_elements)

    metadata = _describe(
        model,
        path=path,
        root=root,
        size=size,
        external_files=external_files,
        parameter_count=parameter_count,
        initializer_bytes=initializer_bytes,
        generated=generated,
    )
    return _CheckedModel(model=model, metadata=metadata, generated_shapes=generated_shapes)


def _describe(
    model: onnx.ModelProto,
    *,
    path: Path,
    root: Path | None,
    size: int,
    external_files: Mapping[Path, int],
    parameter_count: int,
    initializer_bytes: int,
    generated: int,
) -> ModelMetadata:
    inventory: Counter[tuple[str, str]] = Counter()
    node_count = 0
    for _, node in iter_nodes(model.graph):
        inventory[(normalize_domain(node.domain), node.op_type)] += 1
        node_count += 1
    quantization, evidence = detect_quantization(model)
    real_inputs = model_inputs(model.graph)
    return ModelMetadata(
        file_name=path.name,
        size_bytes=size,
        external_data_bytes=sum(external_files.values()),
        # Paths inside the bundle, as its owner knows them; never a server path.
        external_data_files=tuple(
            sorted(target.relative_to(root).as_posix() for target in external_files)
            if root is not None
            else ()
        ),
        ir_version=int(model.ir_version),
        opset_imports={
            normalize_domain(opset.domain): int(opset.version) for opset in model.opset_import
        },
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        model_domain=model.domain,
        model_version=int(model.model_version),
        doc_string=model.doc_string[:2000],
        metadata_props={prop.key: prop.value for prop in model.metadata_props},
        inputs=tuple(tensor_spec(value) for value in real_inputs),
        outputs=tuple(tensor_spec(value) for value in model.graph.output),
        overridable_initializer_inputs=len(model.graph.input) - len(real_inputs),
        operator_inventory=dict(inventory),
        node_count=node_count,
        local_function_count=len(model.functions),
        has_subgraphs=node_count > len(model.graph.node),
        parameter_count=parameter_count,
        initializer_bytes=initializer_bytes,
        generated_constant_elements=generated,
        quantization=quantization,
        quantization_evidence=evidence,
    )


def operator_label(domain: str, op_type: str) -> str:
    """``ai.onnx:Conv`` / ``ai.onnx.ml:ArrayFeatureExtractor``, as onnxruntime's tables write."""
    return f"{display_domain(domain)}:{op_type}"
