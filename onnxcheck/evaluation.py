"""Running a model over the representative inputs, for the steps that score its outputs.

The variant steps (:mod:`onnxcheck.variants`) and the calibration step
(:mod:`onnxcheck.calibration`) feed the same samples: the uploaded samples in batches, up to a
cap, or else one feed per shape bucket. Every output is flattened to ``[samples, features]``.
:func:`cast_feed` gives a model the float type its inputs declare (a float16-input variant fed
its parent's float32 inputs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from onnxcheck.inputs import RepresentativeInputs

DEFAULT_MAX_EVAL_SAMPLES = 5000


def evaluation_feeds(
    inputs: RepresentativeInputs, max_samples: int
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    if inputs.samples:
        taken = 0
        for feed, count in inputs.iter_batches():
            yield feed, count
            taken += count
            if taken >= max_samples:
                return
    else:
        for bucket, feed in zip(inputs.buckets, inputs.bucket_feeds, strict=True):
            yield dict(feed), bucket.batch_size


def collect_outputs(
    session: Any, feeds: Sequence[tuple[dict[str, np.ndarray], int]], names: Sequence[str]
) -> dict[str, np.ndarray]:
    collected: dict[str, list[np.ndarray]] = defaultdict(list)
    for feed, _ in feeds:
        for name, value in zip(names, session.run(list(names), feed), strict=True):
            collected[name].append(np.asarray(value))
    # Every output is flattened to [samples, features] so batches of any size concatenate.
    return {
        name: np.concatenate(
            [part.reshape(len(part), -1) if part.ndim else part.reshape(1, 1) for part in parts]
        )
        for name, parts in collected.items()
    }


_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}


def session_input_dtypes(session: Any) -> dict[str, np.dtype]:
    """The float inputs of an onnxruntime session and their numpy types."""
    return {
        item.name: np.dtype(_ORT_TYPES[item.type])
        for item in session.get_inputs()
        if item.type in _ORT_TYPES
    }


def cast_feed(
    feed: Mapping[str, np.ndarray], dtypes: Mapping[str, np.dtype]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The feed with each float array cast to the type ``dtypes`` declares for it, and the
    names that were cast. Non-float arrays and undeclared names pass through unchanged."""
    cast: dict[str, np.ndarray] = {}
    names: list[str] = []
    for name, array in feed.items():
        wanted = dtypes.get(name)
        if wanted is not None and array.dtype.kind == "f" and array.dtype != wanted:
            cast[name] = array.astype(wanted)
            names.append(name)
        else:
            cast[name] = array
    return cast, names
