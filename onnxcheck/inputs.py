"""Representative inputs for a validation run: an uploaded ``.npz`` or synthetic tensors.

Latency, quantization and calibration are only as good as the data they run on. A user uploads
an ``.npz`` with one array per model input (samples stacked along axis 0) and optionally a
``labels`` array of class indices; everything about it is checked against the model's declared
inputs before it is used, with errors that name the array, the axis and the expected value.

Without an ``.npz``, synthetic tensors are generated from the input spec. They exercise every
operator at realistic sizes, so latency and compatibility are meaningful; accuracy, calibration
and quantization fidelity are not, and every result built on them says so
(:data:`SYNTHETIC_NOTE`).

Shape buckets give sizes to dynamic axes (``{"x[2]": [224]}`` by input and axis, or
``{"batch": [1, 8]}`` by a meaningful name; see :func:`resolve_shape_buckets`). Unnamed axes
(empty, ``?``, ``-1``, ``0``) are each independent. The first axis is the *sample axis*: its
size is the number of items per inference, which is what "items/s" counts.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from onnxcheck.inspection import (
    DEFAULT_MAX_TENSOR_ELEMENTS,
    OnnxCheckError,
    TensorSpec,
    meaningful_axis_name,
)

SYNTHETIC_NOTE = "synthetic inputs: latency and compatibility only"
LABELS_KEY = "labels"
DEFAULT_MAX_INPUTS_BYTES = 1024 * 1024 * 1024
"""Largest total decoded size of an inputs ``.npz`` (1 GiB); checked from headers, not data."""

ShapeBucketsSpec = Mapping[str, Sequence[int] | int] | Sequence[Mapping[str, Sequence[int]]]
"""Either ``{"batch": [1, 8], "X[2]": [640]}`` (``input[axis]`` keys, or a meaningful axis
name as a shorthand for every axis so called; lists are zipped, a one-element list applies to
every bucket) or an explicit list of buckets
``[{"X": [1, 3, 640, 640]}, {"X": [1, 3, 720, 1280]}]``."""


class InputsRejected(OnnxCheckError):
    """The representative inputs (or the shape buckets) do not fit the model."""


@dataclass(frozen=True)
class ShapeBucket:
    """One concrete set of input shapes to measure; ``batch_size`` = items per inference."""

    label: str
    shapes: Mapping[str, tuple[int, ...]]
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShapeBucket:
        return cls(
            label=data["label"],
            shapes={name: tuple(shape) for name, shape in data["shapes"].items()},
            batch_size=int(data["batch_size"]),
        )


@dataclass(frozen=True)
class RepresentativeInputs:
    """Validated inputs: one feed per shape bucket, plus the labelled sample set if uploaded.

    ``samples`` holds every uploaded sample stacked along axis 0 (``None`` when synthetic);
    ``static_batch`` is the model's fixed sample-axis size (``None`` when it is dynamic).
    """

    source: str
    file_name: str | None
    buckets: tuple[ShapeBucket, ...]
    bucket_feeds: tuple[Mapping[str, np.ndarray], ...]
    samples: Mapping[str, np.ndarray] | None
    labels: np.ndarray | None
    static_batch: int | None
    notes: tuple[str, ...] = ()

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def note(self) -> str:
        if self.synthetic:
            return SYNTHETIC_NOTE
        if self.labels is None:
            return "uploaded inputs without labels: no accuracy or calibration"
        return "uploaded inputs with labels"

    @property
    def sample_count(self) -> int:
        if not self.samples:
            return 0
        return max((len(array) for array in self.samples.values() if array.ndim), default=1)

    def iter_batches(self, *, max_batch: int = 256) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """Feeds covering every uploaded sample once, in order, with the sample count of each.

        A model with a fixed sample axis is fed exactly that many samples per inference.
        """
        if not self.samples:
            return
        step = self.static_batch or max_batch
        total = self.sample_count
        for start in range(0, total, step):
            stop = min(start + step, total)
            feed = {
                name: (np.ascontiguousarray(array[start:stop]) if array.ndim else array)
                for name, array in self.samples.items()
            }
            yield feed, stop - start

    def describe(self) -> dict[str, Any]:
        """JSON summary for reports (no tensor data)."""
        return {
            "source": self.source,
            "file_name": self.file_name,
            "synthetic": self.synthetic,
            "note": self.note,
            "sample_count": self.sample_count,
            "has_labels": self.labels is not None,
            "static_batch": self.static_batch,
            "buckets": [bucket.to_dict() for bucket in self.buckets],
            "notes": list(self.notes),
        }

    def save(self, path: str | Path) -> Path:
        """Write everything to one ``.npz`` (no pickles) so a worker subprocess can load it."""
        arrays: dict[str, np.ndarray] = {}
        for index, feed in enumerate(self.bucket_feeds):
            for name, array in feed.items():
                arrays[f"bucket{index}::{name}"] = array
        for name, array in (self.samples or {}).items():
            arrays[f"sample::{name}"] = array
        if self.labels is not None:
            arrays["labels"] = self.labels
        meta = {
            "source": self.source,
            "file_name": self.file_name,
            "buckets": [bucket.to_dict() for bucket in self.buckets],
            "has_samples": self.samples is not None,
            "static_batch": self.static_batch,
            "notes": list(self.notes),
            "input_names": sorted({name for feed in self.bucket_feeds for name in feed}),
        }
        arrays["__meta__"] = np.array(json.dumps(meta))
        target = Path(path)
        np.savez(target, **arrays)
        return target

    @classmethod
    def load(cls, path: str | Path) -> RepresentativeInputs:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            buckets = tuple(ShapeBucket.from_dict(item) for item in meta["buckets"])
            feeds = tuple(
                {name: data[f"bucket{index}::{name}"] for name in meta["input_names"]}
                for index in range(len(buckets))
            )
            samples = (
                {name: data[f"sample::{name}"] for name in meta["input_names"]}
                if meta["has_samples"]
                else None
            )
            labels = data["labels"] if "labels" in data.files else None
        return cls(
            source=meta["source"],
            file_name=meta["file_name"],
            buckets=buckets,
            bucket_feeds=feeds,
            samples=samples,
            labels=labels,
            static_batch=meta["static_batch"],
            notes=tuple(meta["notes"]),
        )


# -- shape buckets ------------------------------------------------------------------------------

_AXIS_KEY = re.compile(r"^(?P<input>.+)\[(?P<axis>\d+)\]$")
MAX_BUCKETS = 16
"""Most buckets one spec may ask for (each is a full latency measurement on the worker)."""
MAX_BUCKET_KEYS = 64
DEFAULT_MAX_AXIS_SIZE = 1 << 20
"""Largest size one dynamic axis may be given (1,048,576: a minute of 16 kHz audio fits)."""
DEFAULT_MAX_TENSOR_BYTES = 256 * 1024 * 1024
"""Largest single input tensor a bucket may ask a shared worker to allocate (256 MiB)."""


def _axis_name(spec: TensorSpec, axis: int) -> str:
    assert spec.shape is not None
    dim = spec.shape[axis]
    return f"{spec.name}[{axis}]" + (f" ('{dim}')" if isinstance(dim, str) else " (unnamed)")


def axis_key(spec: TensorSpec, axis: int) -> str:
    """How a bucket names this axis: its meaningful name (shared by every axis so called),
    else ``input[axis]``."""
    assert spec.shape is not None
    return meaningful_axis_name(spec.shape[axis]) or f"{spec.name}[{axis}]"


def _dynamic_axes_listing(inputs: Sequence[TensorSpec]) -> str:
    names = [_axis_name(spec, axis) for spec in inputs for axis in spec.dynamic_axes]
    return ", ".join(names) or "none"


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str, **details: Any) -> InputsRejected:
    return InputsRejected("invalid_shape_bucket", message, **details)


def _sizes(where: str, value: Any, max_axis_size: int, *, allow_scalar: bool) -> list[int]:
    """A list of positive integers no larger than ``max_axis_size`` (or one integer)."""
    values = [value] if allow_scalar and _is_size(value) else value
    if not isinstance(values, list) or not values or not all(_is_size(v) for v in values):
        raise _bad(
            f"shape bucket {where} must be a non-empty list of positive integers, got "
            f"{json.dumps(value)[:80]}.",
            axis=where,
        )
    if any(v <= 0 for v in values):
        raise _bad(f"shape bucket {where} has a size below 1: {values}.", axis=where)
    if any(v > max_axis_size for v in values):
        raise InputsRejected(
            "shape_bucket_too_large",
            f"shape bucket {where} asks for a size of {max(values):,}; the largest allowed is "
            f"{max_axis_size:,}.",
            axis=where,
            limit=max_axis_size,
        )
    return values


def parse_shape_buckets(
    value: Any, *, max_axis_size: int = DEFAULT_MAX_AXIS_SIZE
) -> ShapeBucketsSpec | None:
    """Check the form of a bucket spec as it came from JSON, before any model is looked at.

    Accepted: ``None`` or ``{}`` (no buckets); an object mapping an axis (``"x[2]"`` or a
    meaningful name such as ``"batch"``) to a positive integer or a non-empty list of them; a
    non-empty list of objects mapping input names to full shapes. Anything else (a number, a
    boolean, a string, a list of numbers, ``null`` sizes, sizes of 0 or above
    ``max_axis_size``...) is an :class:`InputsRejected` with code ``invalid_shape_bucket``
    (or ``shape_bucket_too_large``). A string is refused, never decoded: callers decode JSON.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value:
            return None
        if len(value) > MAX_BUCKET_KEYS:
            raise _bad(f"shape buckets name {len(value)} axes; at most {MAX_BUCKET_KEYS}.")
        spec: dict[str, list[int]] = {}
        for key, sizes in value.items():
            if not isinstance(key, str) or not key.strip():
                raise _bad(f"shape bucket keys are axis names such as 'x[2]', got {key!r}.")
            spec[key] = _sizes(repr(key), sizes, max_axis_size, allow_scalar=True)
            if len(spec[key]) > MAX_BUCKETS:
                raise _bad(
                    f"shape bucket {key!r} lists {len(spec[key])} sizes; at most "
                    f"{MAX_BUCKETS} buckets.",
                    axis=key,
                )
        return spec
    if isinstance(value, list):
        if not value:
            raise _bad("the explicit bucket list is empty.")
        if len(value) > MAX_BUCKETS:
            raise _bad(f"{len(value)} explicit buckets; at most {MAX_BUCKETS}.")
        buckets = []
        for position, bucket in enumerate(value):
            if not isinstance(bucket, Mapping) or not bucket:
                raise _bad(
                    f"explicit bucket {position} must be an object mapping input names to "
                    f'shapes, e.g. {{"x": [1, 3, 224, 224]}}; got {json.dumps(bucket)[:80]}.',
                    bucket=position,
                )
            buckets.append(
                {
                    str(name): _sizes(
                        f"{position} {name!r}", shape, max_axis_size, allow_scalar=False
                    )
                    for name, shape in bucket.items()
                }
            )
        return buckets
    raise _bad(
        'shape buckets are an object such as {"x[0]": [1, 8]} or a list of explicit buckets; '
        f"got {type(value).__name__} {json.dumps(value)[:80]}.",
    )


def _itemsize(dtype: str | None) -> int:
    try:
        size = np.dtype(dtype).itemsize if dtype and dtype != "str" else 0
    except TypeError:
        size = 0
    return size or 8  # strings and types numpy lacks (bfloat16...): assume 8 bytes


def _check_tensor(
    spec: TensorSpec, shape: Sequence[int], max_elements: int, max_tensor_bytes: int
) -> None:
    count = math.prod(shape)
    if count > max_elements:
        raise InputsRejected(
            "inputs_too_large",
            f"input '{spec.name}' with shape {list(shape)} would hold {count:.3g} elements, more "
            f"than the {max_elements:.3g} allowed.",
            input=spec.name,
        )
    nbytes = count * _itemsize(spec.dtype)
    if nbytes > max_tensor_bytes:
        raise InputsRejected(
            "inputs_too_large",
            f"input '{spec.name}' with shape {list(shape)} would take {nbytes:,} bytes "
            f"({nbytes / 2**20:,.0f} MiB); one input tensor may take at most "
            f"{max_tensor_bytes:,} bytes ({max_tensor_bytes / 2**20:,.0f} MiB).",
            input=spec.name,
            size_bytes=nbytes,
            limit_bytes=max_tensor_bytes,
        )


def _check_elements(name: str, shape: Sequence[int], max_elements: int) -> None:
    count = math.prod(shape)
    if count > max_elements:
        raise InputsRejected(
            "inputs_too_large",
            f"input '{name}' with shape {list(shape)} would hold {count:.3g} elements, more "
            f"than the {max_elements:.3g} allowed.",
            input=name,
        )


def _tensor_inputs(inputs: Sequence[TensorSpec]) -> list[TensorSpec]:
    for spec in inputs:
        if spec.kind != "tensor" or spec.shape is None or spec.dtype is None:
            raise InputsRejected(
                "unsupported_input_type",
                f"input '{spec.name}' is a {spec.kind} without a known element type and rank; "
                "only tensors with a declared rank can be fed.",
                input=spec.name,
            )
    return list(inputs)


# -- suggested sizes for open axes --------------------------------------------------------------

_BATCH_NAMES = re.compile(r"batch|^(n|b|bs|num|samples?)$", re.IGNORECASE)
_HEIGHT_NAMES = re.compile(r"height|^h$|^img_?h|^rows$", re.IGNORECASE)
_WIDTH_NAMES = re.compile(r"width|^w$|^img_?w|^cols$", re.IGNORECASE)
_SEQUENCE_NAMES = re.compile(r"seq|len|token|time|frame|step|^t$|^s$", re.IGNORECASE)
_IMAGE_HINT_KEYS = ("imgsz", "image_size", "img_size", "input_size", "imagesize")
DEFAULT_IMAGE_SIZE = 224
DEFAULT_SEQUENCE_LENGTH = 128


def _hinted_image_size(hints: Mapping[str, str] | None) -> tuple[int, int] | None:
    """(height, width) from metadata props exporters write (ultralytics: ``imgsz``)."""
    for key in _IMAGE_HINT_KEYS:
        text = (hints or {}).get(key)
        if not text:
            continue
        numbers = [int(n) for n in re.findall(r"\d+", str(text))][:2]
        if numbers and all(0 < n <= 16384 for n in numbers):
            return (numbers[0], numbers[-1])
    return None


def _image_axes(spec: TensorSpec) -> tuple[int, int] | None:
    """(height axis, width axis) of a 4-D float input in NCHW or NHWC layout."""
    assert spec.shape is not None
    if len(spec.shape) != 4 or not (spec.dtype or "").startswith(("float", "bfloat")):
        return None
    channels = (1, 3, 4)
    if spec.shape[1] in channels or spec.shape[3] not in channels:
        return (2, 3)  # NCHW, also the guess when no channel axis is fixed
    return (1, 2)


def suggest_axis_size(
    spec: TensorSpec, axis: int, *, hints: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """A size to offer for an open axis and why: batch → 1, image height/width of a 4-D float
    input → the model's declared image size or 224, sequence length → 128, else 1."""
    assert spec.shape is not None
    name = meaningful_axis_name(spec.shape[axis]) or ""
    image = _hinted_image_size(hints)
    height, width = image or (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    source = "from the model's metadata" if image else "a common image size"
    if _BATCH_NAMES.search(name):
        return 1, "batch: one item per inference"
    if _HEIGHT_NAMES.search(name):
        return height, f"image height, {source}"
    if _WIDTH_NAMES.search(name):
        return width, f"image width, {source}"
    if _SEQUENCE_NAMES.search(name):
        return DEFAULT_SEQUENCE_LENGTH, "sequence length, a common size"
    image_axes = _image_axes(spec)
    if image_axes and axis in image_axes:
        layout = "NCHW" if image_axes == (2, 3) else "NHWC"
        which = "height" if axis == image_axes[0] else "width"
        size = height if which == "height" else width
        return size, f"image {which} of a 4-D {layout} input, {source}"
    if axis == 0:
        return 1, "first axis, read as the batch: one item per inference"
    if len(spec.shape) in (2, 3) and axis == 1:
        return DEFAULT_SEQUENCE_LENGTH, "second axis of a sequence-shaped input, a common length"
    return 1, "no convention applies; 1 is the smallest size"


def open_axes(
    inputs: Sequence[TensorSpec],
    given: Mapping[tuple[str, int], Any] | None = None,
    *,
    hints: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every dynamic axis without a size, one entry per bucket key, with a suggested size.

    Axes sharing a meaningful name are one entry (one size fixes them all); every unnamed axis
    (empty, ``?``, ``-1``, ``0``) is an entry of its own.
    """
    entries: dict[str, dict[str, Any]] = {}
    for spec in inputs:
        assert spec.shape is not None
        for axis in spec.dynamic_axes:
            if given is not None and (spec.name, axis) in given:
                continue
            key = axis_key(spec, axis)
            if key in entries:
                entries[key]["axes"].append(f"{spec.name}[{axis}]")
                continue
            size, why = suggest_axis_size(spec, axis, hints=hints)
            entries[key] = {
                "key": key,
                "input": spec.name,
                "axis": axis,
                "dim": spec.shape[axis],
                "axes": [f"{spec.name}[{axis}]"],
                "suggested": size,
                "reason": why,
            }
    return list(entries.values())


def _missing_axes_error(entries: list[dict[str, Any]], where: str = "") -> InputsRejected:
    listing = "; ".join(
        f"{entry['key']}"
        + (f" (also {', '.join(entry['axes'][1:])})" if len(entry["axes"]) > 1 else "")
        + f": e.g. {entry['suggested']} ({entry['reason']})"
        for entry in entries
    )
    suggested = {entry["key"]: [entry["suggested"]] for entry in entries}
    count = len(entries)
    return InputsRejected(
        "missing_shape_bucket",
        f"{where}{count} dynamic ax{'is has' if count == 1 else 'es have'} no size: {listing}. "
        f"Give every one a size, e.g. {json.dumps(suggested)}.",
        input=entries[0]["input"],
        axis=entries[0]["axis"],
        open_axes=entries,
        suggested_shape_buckets=suggested,
    )


def resolve_shape_buckets(
    *,
    inputs: Sequence[TensorSpec],
    spec: ShapeBucketsSpec | None,
    data_shapes: Mapping[str, tuple[int, ...]] | None = None,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    max_axis_size: int = DEFAULT_MAX_AXIS_SIZE,
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
    hints: Mapping[str, str] | None = None,
    allow_open: bool = False,
) -> list[ShapeBucket]:
    """Turn a bucket spec into concrete input shapes, refusing any dynamic axis left open.

    ``spec`` is first checked by :func:`parse_shape_buckets`. ``data_shapes`` (uploaded ``.npz``
    mode) fixes every dynamic axis except the sample axis to the data's size; an unbucketed
    dynamic sample axis then defaults to 1 item per inference. Every axis left open is listed
    in one ``missing_shape_bucket`` refusal with a suggested size (``hints``: the model's
    metadata props); ``allow_open`` sizes them 1 instead, to check a partial spec at upload.
    Each input tensor is bounded by ``max_tensor_elements`` and ``max_tensor_bytes``.
    """
    specs = _tensor_inputs(inputs)
    spec = parse_shape_buckets(spec, max_axis_size=max_axis_size)
    if spec is not None and not isinstance(spec, Mapping):
        return _explicit_buckets(
            specs,
            list(spec),
            data_shapes,
            max_tensor_elements,
            max_tensor_bytes,
            hints,
            allow_open,
        )
    assignments = _axis_assignments(specs, spec or {})
    count = max((len(values) for values in assignments.values()), default=1)
    for key, values in assignments.items():
        if len(values) not in {1, count}:
            raise InputsRejected(
                "invalid_shape_bucket",
                f"shape bucket lists must have the same length (or one value); axis "
                f"{key[0]}[{key[1]}] has {len(values)} values, others have {count}.",
                axis=f"{key[0]}[{key[1]}]",
            )
    if data_shapes is None:
        missing = open_axes(specs, assignments, hints=hints)
        if missing and not allow_open:
            raise _missing_axes_error(missing)
    buckets = []
    for index in range(count):
        shapes: dict[str, tuple[int, ...]] = {}
        parts: list[str] = []
        for item in specs:
            assert item.shape is not None
            shape: list[int] = []
            for axis, dim in enumerate(item.shape):
                chosen = assignments.get((item.name, axis))
                if isinstance(dim, int):
                    shape.append(dim)
                elif chosen is not None:
                    size = chosen[index if len(chosen) > 1 else 0]
                    data_size = (data_shapes or {}).get(item.name, ())
                    if axis > 0 and data_shapes is not None and data_size[axis] != size:
                        raise InputsRejected(
                            "invalid_shape_bucket",
                            f"{_axis_name(item, axis)} is {data_size[axis]} in the uploaded "
                            f"inputs; a bucket cannot resize it to {size} (only the sample axis "
                            "0 can be bucketed with uploaded inputs).",
                            input=item.name,
                            axis=axis,
                        )
                    shape.append(size)
                    part = f"{axis_key(item, axis)}={size}"
                    if part not in parts:
                        parts.append(part)
                elif data_shapes is not None and axis > 0:
                    shape.append(data_shapes[item.name][axis])
                else:  # the sample axis with uploaded data, or an open axis being checked
                    shape.append(1)
            _check_tensor(item, shape, max_tensor_elements, max_tensor_bytes)
            shapes[item.name] = tuple(shape)
        _check_shared_dims(specs, shapes, f"bucket {index}")
        buckets.append(_bucket(parts, shapes))
    return buckets


def check_shape_buckets(
    *,
    inputs: Sequence[TensorSpec],
    spec: Any,
    max_axis_size: int = DEFAULT_MAX_AXIS_SIZE,
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
    allow_open: bool = True,
) -> ShapeBucketsSpec | None:
    """Check a spec against the model without building inputs and return it parsed.

    Open axes are allowed by default (an upload may leave sizes to the validation request).
    """
    parsed = parse_shape_buckets(spec, max_axis_size=max_axis_size)
    if parsed is not None:
        resolve_shape_buckets(
            inputs=inputs,
            spec=parsed,
            max_axis_size=max_axis_size,
            max_tensor_bytes=max_tensor_bytes,
            allow_open=allow_open,
        )
    return parsed


def canonical_shape_buckets(
    *, inputs: Sequence[TensorSpec], spec: ShapeBucketsSpec | None
) -> ShapeBucketsSpec | None:
    """The spec as it is stored: a key spelled like a placeholder (``"?"``, the old form) is
    rewritten to one ``input[axis]`` key per axis it sizes; meaningful names, ``input[axis]``
    keys and explicit bucket lists are kept. Call it on a spec that resolves."""
    if spec is None or not isinstance(spec, Mapping):
        return spec
    out: dict[str, Any] = {}
    for key, sizes in spec.items():
        if _AXIS_KEY.match(key) or meaningful_axis_name(key) is not None:
            out[key] = sizes
            continue
        for item in inputs:
            for axis, dim in enumerate(item.shape or ()):
                if isinstance(dim, str) and dim == key:
                    out.setdefault(f"{item.name}[{axis}]", sizes)
    return out


def _bucket(parts: list[str], shapes: dict[str, tuple[int, ...]]) -> ShapeBucket:
    first = next(iter(shapes.values()), ())
    label = ",".join(parts) or "static"
    return ShapeBucket(label=label, shapes=shapes, batch_size=int(first[0]) if first else 1)


def _axis_assignments(
    specs: Sequence[TensorSpec], spec: Mapping[str, Sequence[int]]
) -> dict[tuple[str, int], list[int]]:
    """Which axes each key sizes: ``input[axis]`` one axis; a meaningful name every axis so
    called. A placeholder spelling (``"?"``) as a key is the old form: it sizes every axis
    spelled so, each one still independent of the others."""
    by_name = {item.name: item for item in specs}
    assignments: dict[tuple[str, int], list[int]] = {}
    for key, value in spec.items():
        sizes = list(value)
        targets: list[tuple[str, int]] = []
        match = _AXIS_KEY.match(key)
        if match and match.group("input") in by_name:
            item = by_name[match.group("input")]
            axis = int(match.group("axis"))
            assert item.shape is not None
            if axis >= len(item.shape):
                raise InputsRejected(
                    "invalid_shape_bucket",
                    f"input '{item.name}' has rank {len(item.shape)}; axis {axis} does not exist.",
                    input=item.name,
                    axis=axis,
                )
            if isinstance(item.shape[axis], int):
                raise InputsRejected(
                    "invalid_shape_bucket",
                    f"{item.name}[{axis}] is fixed at {item.shape[axis]} by the model; only "
                    "dynamic axes take shape buckets.",
                    input=item.name,
                    axis=axis,
                )
            targets.append((item.name, axis))
        else:
            for item in specs:
                assert item.shape is not None
                targets.extend(
                    (item.name, axis)
                    for axis, dim in enumerate(item.shape)
                    if isinstance(dim, str) and dim == key
                )
        if not targets:
            raise InputsRejected(
                "invalid_shape_bucket",
                f"no dynamic axis is called {key!r}; the model's dynamic axes are: "
                f"{_dynamic_axes_listing(specs)}.",
                axis=key,
            )
        for target in targets:
            if target in assignments and assignments[target] != sizes:
                raise InputsRejected(
                    "invalid_shape_bucket",
                    f"{target[0]}[{target[1]}] is given two different sizes "
                    f"({assignments[target]} and {sizes}, by {key!r}).",
                    input=target[0],
                    axis=target[1],
                )
            assignments[target] = sizes
    return assignments


def _explicit_buckets(
    specs: Sequence[TensorSpec],
    explicit: Sequence[Mapping[str, Sequence[int]]],
    data_shapes: Mapping[str, tuple[int, ...]] | None,
    max_tensor_elements: int,
    max_tensor_bytes: int,
    hints: Mapping[str, str] | None,
    allow_open: bool,
) -> list[ShapeBucket]:
    if not explicit:
        raise InputsRejected("invalid_shape_bucket", "the explicit bucket list is empty.")
    buckets = []
    for position, given in enumerate(explicit):
        unknown = sorted(set(given) - {item.name for item in specs})
        if unknown:
            raise InputsRejected(
                "invalid_shape_bucket",
                f"bucket {position} names unknown inputs {unknown}; model inputs are "
                f"{[item.name for item in specs]}.",
                bucket=position,
            )
        if data_shapes is None and not allow_open:
            missing = open_axes([item for item in specs if item.name not in given], hints=hints)
            if missing:
                error = _missing_axes_error(missing, f"bucket {position} gives no shape for ")
                error.details["bucket"] = position
                raise error
        shapes: dict[str, tuple[int, ...]] = {}
        for item in specs:
            assert item.shape is not None
            if item.name not in given:
                shape = [
                    dim
                    if isinstance(dim, int)
                    else (data_shapes[item.name][axis] if data_shapes is not None else 1)
                    for axis, dim in enumerate(item.shape)
                ]
            else:
                shape = list(given[item.name])
                if len(shape) != len(item.shape):
                    raise InputsRejected(
                        "invalid_shape_bucket",
                        f"bucket {position} gives input '{item.name}' rank {len(shape)}; the "
                        f"model declares rank {len(item.shape)} {list(item.shape)}.",
                        input=item.name,
                        bucket=position,
                    )
                data_size = (data_shapes or {}).get(item.name)
                for axis, (dim, size) in enumerate(zip(item.shape, shape, strict=True)):
                    if isinstance(dim, int):
                        fixed_at: int | None = dim
                    elif data_size is not None and axis > 0:
                        fixed_at = data_size[axis]  # the uploaded data decides this axis
                    else:
                        fixed_at = None
                    if fixed_at is not None and fixed_at != size:
                        raise InputsRejected(
                            "invalid_shape_bucket",
                            f"bucket {position} sets {item.name}[{axis}] to {size}, but it is "
                            f"fixed at {fixed_at}.",
                            input=item.name,
                            axis=axis,
                            bucket=position,
                        )
            _check_tensor(item, shape, max_tensor_elements, max_tensor_bytes)
            shapes[item.name] = tuple(shape)
        _check_shared_dims(specs, shapes, f"bucket {position}")
        parts = [f"{name}={'x'.join(map(str, shape))}" for name, shape in shapes.items()]
        buckets.append(_bucket(parts, shapes))
    return buckets


def _check_shared_dims(
    specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """A meaningful axis name shared by several axes (``batch``) must have one size everywhere;
    placeholder spellings (empty, ``?``, ``-1``, ``0``) tie nothing together."""
    seen: dict[str, tuple[str, int, int]] = {}
    for item in specs:
        assert item.shape is not None
        for axis, dim in enumerate(item.shape):
            name = meaningful_axis_name(dim)
            if name is None:
                continue
            size = shapes[item.name][axis]
            if name in seen and seen[name][2] != size:
                first_input, first_axis, first_size = seen[name]
                raise InputsRejected(
                    "invalid_shape_bucket" if where.startswith("bucket") else "inputs_wrong_shape",
                    f"{where}: axis '{name}' is {first_size} at {first_input}[{first_axis}] "
                    f"but {size} at {item.name}[{axis}]; axes with the same name must have the "
                    "same size.",
                    axis=name,
                )
            seen.setdefault(name, (item.name, axis, size))


# -- synthetic inputs ---------------------------------------------------------------------------


def _synthetic_array(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator):
    """Floats ~ N(0, 1); integers and booleans are zeros, which are valid indices/lengths."""
    assert spec.dtype is not None
    if spec.dtype == "str":
        raise InputsRejected(
            "unsupported_input_type",
            f"input '{spec.name}' takes strings; synthetic inputs cannot invent meaningful "
            "strings, upload an .npz.",
            input=spec.name,
        )
    dtype = np.dtype(spec.dtype)
    if np.issubdtype(dtype, np.floating) or dtype.kind == "V" or "float" in dtype.name:
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def synthesize_inputs(
    *,
    inputs: Sequence[TensorSpec],
    shape_buckets: ShapeBucketsSpec | None = None,
    seed: int = 0,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    max_axis_size: int = DEFAULT_MAX_AXIS_SIZE,
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
) -> RepresentativeInputs:
    """Generate one deterministic feed per bucket. Dynamic axes must all have buckets."""
    specs = _tensor_inputs(inputs)
    buckets = resolve_shape_buckets(
        inputs=specs,
        spec=shape_buckets,
        max_tensor_elements=max_tensor_elements,
        max_axis_size=max_axis_size,
        max_tensor_bytes=max_tensor_bytes,
    )
    feeds = []
    for index, bucket in enumerate(buckets):
        rng = np.random.default_rng(seed + index)
        feeds.append(
            {spec.name: _synthetic_array(spec, bucket.shapes[spec.name], rng) for spec in specs}
        )
    static = {spec.shape[0] for spec in specs if spec.shape and isinstance(spec.shape[0], int)}
    return RepresentativeInputs(
        source="synthetic",
        file_name=None,
        buckets=tuple(buckets),
        bucket_feeds=tuple(feeds),
        samples=None,
        labels=None,
        static_batch=min(static) if static else None,
        notes=("floats ~ N(0,1) with a fixed seed; integer and boolean inputs are zeros",),
    )


# -- uploaded .npz ------------------------------------------------------------------------------


def npz_array_shapes(source: str | Path | BinaryIO) -> dict[str, tuple[int, ...]]:
    """Shape of every array in an ``.npz`` (a path or an open binary file), from the headers
    only: a request can check buckets against stored inputs without reading their data."""
    return {name: shape for name, (shape, _) in _npz_headers(source).items()}


def _npz_headers(source: str | Path | BinaryIO) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of every array, read from the .npy headers without loading data."""
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    path = (
        Path(source)
        if isinstance(source, str | Path)
        else Path(getattr(source, "name", "") or "inputs.npz")
    )
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise InputsRejected(
                        "inputs_unreadable",
                        f"'{path.name}' contains '{info.filename}', which is not a .npy array.",
                    )
                with archive.open(info) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                    else:
                        raise InputsRejected(
                            "inputs_unreadable",
                            f"'{info.filename}' uses .npy format {version}; save with numpy's "
                            "default format (1.0).",
                        )
                headers[info.filename.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise InputsRejected(
            "inputs_unreadable", f"'{path.name}' is not a readable .npz archive: {exc}"
        ) from exc
    return headers


def load_representative_inputs(
    *,
    npz_path: str | Path,
    inputs: Sequence[TensorSpec],
    shape_buckets: ShapeBucketsSpec | None = None,
    max_bytes: int = DEFAULT_MAX_INPUTS_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    max_axis_size: int = DEFAULT_MAX_AXIS_SIZE,
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
) -> RepresentativeInputs:
    """Load and validate an uploaded ``.npz`` against the model's inputs.

    Rules: one array per model input, named exactly after it, plus optional ``labels``; no
    other arrays. Each array has the input's exact dtype and rank; static dimensions match
    (the sample axis 0 may hold any multiple of a fixed batch size); all arrays hold the same
    number of samples; ``labels`` is a 1-D integer array of class indices, one per sample.
    """
    path = Path(npz_path)
    specs = _tensor_inputs(inputs)
    headers = _npz_headers(path)
    total = 0
    for name, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise InputsRejected(
                "inputs_unreadable",
                f"array '{name}' holds Python objects; only numeric arrays are accepted.",
                array=name,
            )
        total += math.prod(shape) * dtype.itemsize
        _check_elements(name, shape, max_tensor_elements)
    if total > max_bytes:
        raise InputsRejected(
            "inputs_too_large",
            f"'{path.name}' decodes to {total:,} bytes; the limit is {max_bytes:,}.",
            size_bytes=total,
            limit_bytes=max_bytes,
        )

    expected = {spec.name for spec in specs}
    missing = sorted(expected - set(headers))
    if missing:
        raise InputsRejected(
            "inputs_missing_array",
            f"'{path.name}' has no array for model input(s) {missing}; arrays found: "
            f"{sorted(headers)}.",
            missing=missing,
        )
    unknown = sorted(set(headers) - expected - {LABELS_KEY})
    if unknown:
        raise InputsRejected(
            "inputs_unknown_array",
            f"'{path.name}' has array(s) {unknown} that match no model input (inputs: "
            f"{sorted(expected)}; labels go in '{LABELS_KEY}').",
            unknown=unknown,
        )

    sample_counts: dict[str, int] = {}
    static_batches: set[int] = set()
    for spec in specs:
        assert spec.shape is not None and spec.dtype is not None
        shape, dtype = headers[spec.name]
        if dtype.name != spec.dtype:
            raise InputsRejected(
                "inputs_wrong_dtype",
                f"array '{spec.name}' is {dtype.name}; the model input is {spec.dtype}.",
                input=spec.name,
                expected=spec.dtype,
                actual=dtype.name,
            )
        if len(shape) != len(spec.shape):
            raise InputsRejected(
                "inputs_wrong_rank",
                f"array '{spec.name}' has rank {len(shape)} {list(shape)}; the model input has "
                f"rank {len(spec.shape)} {list(spec.shape)} (samples go along axis 0).",
                input=spec.name,
                expected=len(spec.shape),
                actual=len(shape),
            )
        for axis, (dim, size) in enumerate(zip(spec.shape, shape, strict=True)):
            if axis == 0 and isinstance(dim, int):
                static_batches.add(dim)
                if dim == 0 or size % dim or size == 0:
                    raise InputsRejected(
                        "inputs_wrong_shape",
                        f"array '{spec.name}' has {size} samples on axis 0; the model takes "
                        f"exactly {dim} per inference, so it must be a non-zero multiple of "
                        f"{dim}.",
                        input=spec.name,
                        axis=0,
                    )
            elif isinstance(dim, int) and dim != size:
                raise InputsRejected(
                    "inputs_wrong_shape",
                    f"array '{spec.name}' has size {size} on axis {axis}; the model requires "
                    f"{dim} (shape {list(spec.shape)}, array {list(shape)}).",
                    input=spec.name,
                    axis=axis,
                    expected=dim,
                    actual=size,
                )
        if shape:
            sample_counts[spec.name] = shape[0]
    if len(set(sample_counts.values())) > 1:
        raise InputsRejected(
            "inputs_sample_count_mismatch",
            f"arrays hold different numbers of samples on axis 0: {sample_counts}.",
            counts=sample_counts,
        )
    sample_count = next(iter(sample_counts.values()), 1)
    if sample_count == 0:
        raise InputsRejected("inputs_empty", f"'{path.name}' holds no samples.")

    if LABELS_KEY in headers:
        shape, dtype = headers[LABELS_KEY]
        if len(shape) != 1 or dtype.kind not in "iu":
            raise InputsRejected(
                "labels_wrong_dtype",
                f"'{LABELS_KEY}' must be a 1-D integer array of class indices; it is "
                f"{dtype.name} with shape {list(shape)}.",
            )
        if shape[0] != sample_count:
            raise InputsRejected(
                "labels_length_mismatch",
                f"'{LABELS_KEY}' has {shape[0]} entries but the inputs hold {sample_count} "
                "samples.",
                expected=sample_count,
                actual=shape[0],
            )

    with np.load(path, allow_pickle=False) as data:
        samples = {spec.name: np.ascontiguousarray(data[spec.name]) for spec in specs}
        labels = data[LABELS_KEY].astype(np.int64) if LABELS_KEY in headers else None
    if labels is not None and labels.size and labels.min() < 0:
        raise InputsRejected("labels_out_of_range", f"'{LABELS_KEY}' holds negative class indices.")
    _check_shared_dims(specs, {name: a.shape for name, a in samples.items()}, f"'{path.name}'")

    data_shapes = {name: tuple(array.shape) for name, array in samples.items()}
    buckets = resolve_shape_buckets(
        inputs=specs,
        spec=shape_buckets,
        data_shapes=data_shapes,
        max_tensor_elements=max_tensor_elements,
        max_axis_size=max_axis_size,
        max_tensor_bytes=max_tensor_bytes,
    )
    notes: list[str] = []
    feeds = []
    for bucket in buckets:
        feed = {}
        for name, array in samples.items():
            wanted = bucket.shapes[name][0] if array.ndim else 0
            if array.ndim and wanted > len(array):
                notes.append(
                    f"bucket {bucket.label}: only {len(array)} samples uploaded, repeated to "
                    f"fill {wanted}"
                )
            feed[name] = (
                np.ascontiguousarray(np.take(array, np.arange(wanted) % len(array), axis=0))
                if array.ndim
                else array
            )
        feeds.append(feed)
    unbucketed = [
        spec.name
        for spec in specs
        if spec.shape
        and not isinstance(spec.shape[0], int)
        and not _bucketed_sample_axis(spec, shape_buckets)
    ]
    if unbucketed:
        notes.append(f"sample axis of {unbucketed} not bucketed: measured at 1 item per inference")
    return RepresentativeInputs(
        source="npz",
        file_name=path.name,
        buckets=tuple(buckets),
        bucket_feeds=tuple(feeds),
        samples=samples,
        labels=labels,
        static_batch=min(static_batches) if static_batches else None,
        notes=tuple(dict.fromkeys(notes)),
    )


def _bucketed_sample_axis(spec: TensorSpec, shape_buckets: ShapeBucketsSpec | None) -> bool:
    if shape_buckets is None:
        return False
    if not isinstance(shape_buckets, Mapping):
        return True
    assert spec.shape is not None
    return f"{spec.name}[0]" in shape_buckets or spec.shape[0] in shape_buckets
