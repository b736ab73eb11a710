"""Running a model over the representative inputs, for the steps that score its outputs.

The variant steps (:mod:`onnxcheck.variants`) and the calibration step
(:mod:`onnxcheck.calibration`) feed the same samples: the uploaded samples in batches, up to a
cap, or else one feed per shape bucket. Every output is flattened to ``[samples, features]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
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
