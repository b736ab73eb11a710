"""Child-process entry point for one validation step: ``python -m onnxcheck.worker REQ OUT``.

:func:`onnxcheck.runner.run_isolated` starts one of these per heavy step so that a step which
hangs inside onnxruntime can be killed at its time limit, a crash (segfault, OOM kill) costs only
the step, an optional address-space limit protects the worker host, and the latency step's peak
memory is measured in a process that holds nothing else. The request is JSON written by the
parent; the result is the step's ``StepResult.to_dict()`` as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    request_path, result_path = Path(argv[1]), Path(argv[2])
    request = json.loads(request_path.read_text())
    limit = request.get("address_space_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))

    from onnxcheck.runner import decode_kwargs, run_step

    result = run_step(request["step"], **decode_kwargs(request["kwargs"]))
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(result.to_dict(), allow_nan=False))
    partial.replace(result_path)  # the parent never reads a half-written result
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
