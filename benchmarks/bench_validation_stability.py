"""Validation verdict stability (issue 9): today's code against the new code, in one run.

The same model is validated ``--repeats`` times with the machine idle, then ``--repeats`` times
while a second validation of the same model runs concurrently (a loop in another process, so
every measured run overlaps it), once with the code of ``--old-sha`` (extracted with
``git archive`` into a temporary directory and run from there, as the migration test does) and
once with this checkout. Each validation is a full ``run_validation`` (synthetic inputs, CPU
target) in its own process whose working directory and ``PYTHONPATH`` are that tree; today's code
runs with onnxruntime's default thread count (what the worker did), the new code with
``--threads`` intra-op threads (the Procfile's ``VALIDATION_THREADS``).

The budget defaults to the P95 of a bare onnxruntime loop measured at the start, so it sits
where verdicts flip. Printed per validation: the latency gate's verdict, P95 and its interval,
runs, other processes' CPU use (new code), wall time; per tree and condition: the verdicts, the
P95 spread (max/min) and the interval widths. Then the full validation time of the light
ResNet50, old and new, idle.

Run: ``.venv/bin/python benchmarks/bench_validation_stability.py [--repeats 5] [--budget MS]``.
Figures vary with the machine and its load; compare only inside one run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_SHA = "9ad4ad17ae596206dfc0fb535da79dc65464138f"  # main before issue 9's latency work

_PYCACHE = shutil.ignore_patterns("__pycache__")

# Runs inside the tree under test (cwd and PYTHONPATH = that tree): only its own code is used.
DRIVER = r"""
import json, sys, time
from pathlib import Path
from onnxcheck.gates import GateThresholds
from onnxcheck.inspection import sha256_file
from onnxcheck.operators import builtin_profile
from onnxcheck.pipeline import InputsSpec, run_validation

model, budget, threads, workdir, loop = sys.argv[1:6]
budget = float(budget)
kwargs = {"intra_op_num_threads": int(threads) if threads != "default" else None}
import inspect
if "host_shared" in inspect.signature(run_validation).parameters:
    kwargs["host_shared"] = True
digest = sha256_file(Path(model))
while True:
    started = time.perf_counter()
    report = run_validation(
        model_path=model, expected_sha256=digest, target=builtin_profile("cpu"),
        inputs=InputsSpec(), gates=GateThresholds(latency_budget_ms=budget),
        workdir=workdir, **kwargs,
    )
    wall = time.perf_counter() - started
    if loop == "loop":
        continue
    data = report.to_dict()
    latency = next(s for s in data["steps"] if s["name"] == "latency")
    gates = next(s for s in data["steps"] if s["name"] == "gates")["data"]["gates"]
    gate = next(g for g in gates if g["name"] == "latency_p95")
    print(json.dumps({
        "verdict": data.get("verdict") or ("passed" if data["passed"] else "failed"),
        "latency_gate": gate["status"],
        "buckets": latency["data"].get("buckets", []),
        "remeasured": "remeasure" in latency["data"],
        "steps_ms": {s["name"]: s["duration_ms"] for s in data["steps"]},
        "wall_s": wall,
    }))
    break
"""


def extract(sha: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", sha], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def validate(tree: Path, model: Path, budget: float, threads: str, workdir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(model), str(budget), threads, str(workdir), "once"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def background(tree: Path, model: Path, budget: float, threads: str, workdir: Path):
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(model), str(budget), threads, str(workdir), "loop"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def bare_p95(model: Path, runs: int = 400, sessions: int = 3) -> float:
    """Median over ``sessions`` sessions of a bare loop's P95, with the options the latency step
    uses and onnxruntime's default thread count."""
    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(ROOT))
    from onnxcheck.inputs import synthesize_inputs
    from onnxcheck.inspection import inspect_model
    from onnxcheck.latency import session_options

    feed = synthesize_inputs(inputs=inspect_model(path=model).inputs).bucket_feeds[0]
    p95s = []
    for _ in range(sessions):
        session = ort.InferenceSession(
            str(model), session_options(), providers=["CPUExecutionProvider"]
        )
        for _ in range(20):
            session.run(None, feed)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run(None, feed)
            times.append(time.perf_counter_ns() - t0)
        p95s.append(float(np.percentile(np.asarray(times) / 1e6, 95)))
    return statistics.median(p95s)


def row(result: dict) -> str:
    bucket = result["buckets"][0] if result["buckets"] else {}
    low, high = bucket.get("p95_ci_low_ms"), bucket.get("p95_ci_high_ms")
    interval = f"[{low:.2f}-{high:.2f}]" if low is not None and high is not None else "[n/a]"
    others = bucket.get("other_cpu_cores")
    return (
        f"gate {result['latency_gate']:<12} run {result['verdict']:<12} "
        f"P95 {bucket.get('p95_ms', float('nan')):7.2f} ms {interval:<16} "
        f"runs {bucket.get('runs', 0):>4}  other CPU "
        f"{'-' if others is None else f'{others:.2f}':>5}  "
        f"{'re-measured ' if result['remeasured'] else ''}wall {result['wall_s']:.1f} s"
    )


def summary(results: list[dict]) -> str:
    verdicts = [r["latency_gate"] for r in results]
    p95s = [r["buckets"][0]["p95_ms"] for r in results if r["buckets"]]
    widths = [
        r["buckets"][0]["p95_ci_high_ms"] - r["buckets"][0]["p95_ci_low_ms"]
        for r in results
        if r["buckets"]
        and r["buckets"][0].get("p95_ci_high_ms") is not None
        and r["buckets"][0].get("p95_ci_low_ms") is not None
    ]
    flip = "passed" in verdicts and "failed" in verdicts
    width = f"median {statistics.median(widths):.2f} ms" if widths else "n/a"
    return (
        f"verdicts {', '.join(verdicts)}; flip passed<->failed: {'YES' if flip else 'no'}; "
        f"P95 {min(p95s):.2f}-{max(p95s):.2f} ms (max/min {max(p95s) / min(p95s):.2f}); "
        f"P95 interval width {width}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="squeezenet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=None, help="ms; default: bare-loop P95")
    parser.add_argument("--threads", default="2", help="intra-op threads of the new code")
    parser.add_argument("--old-sha", default=OLD_SHA)
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--skip-old", action="store_true", help="measure only this tree")
    parser.add_argument(
        "--conditions", default="idle,loaded", help="comma-separated: idle, loaded or both"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from onnxcheck.latency import machine_description
    from tests import onnx_models

    model = onnx_models.light_model_path(args.model)
    machine = machine_description(intra_op_num_threads=None)
    print(
        f"machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, "
        f"onnxruntime {machine['onnxruntime']}, load average {os.getloadavg()[0]:.2f}"
    )
    budget = args.budget if args.budget is not None else round(bare_p95(model), 2)
    print(f"model light_{args.model}.onnx, budget {budget} ms (bare-loop P95 unless given)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-stability-") as tmp:
        tmp_path = Path(tmp)
        # The new code is copied first, so edits made while the benchmark runs do not leak in.
        new_tree = tmp_path / "new"
        shutil.copytree(ROOT / "onnxcheck", new_tree / "onnxcheck", ignore=_PYCACHE)
        trees = (
            {}
            if args.skip_old
            else {
                f"old {args.old_sha[:7]}": (extract(args.old_sha, tmp_path / "old"), "default"),
            }
        )
        trees["new (this tree)"] = (new_tree, args.threads)
        results: dict[tuple[str, str], list[dict]] = {}
        for name, (tree, threads) in trees.items():
            for condition in args.conditions.split(","):
                load = None
                if condition == "loaded":
                    load = background(tree, model, budget, threads, tmp_path / "load")
                    time.sleep(3)  # the second validation is under way
                try:
                    runs = []
                    for index in range(args.repeats):
                        result = validate(tree, model, budget, threads, tmp_path / "run")
                        runs.append(result)
                        print(f"{name:<16} {condition:<7} #{index + 1}  {row(result)}", flush=True)
                    results[(name, condition)] = runs
                finally:
                    if load is not None:
                        os.killpg(load.pid, 15)
                        load.wait()
        print("\nsummary (latency gate verdicts):")
        for (name, condition), runs in results.items():
            print(f"  {name:<16} {condition:<7} {summary(runs)}")
        if not args.skip_resnet:
            resnet = onnx_models.light_model_path("resnet50")
            print("\nfull validation, light ResNet50, idle (budget 1000 ms):")
            for name, (tree, threads) in trees.items():
                result = validate(tree, resnet, 1000.0, threads, tmp_path / "resnet")
                steps = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in result["steps_ms"].items())
                bucket = result["buckets"][0]
                print(
                    f"  {name:<16} {result['wall_s']:.1f} s ({bucket['runs']} latency runs, "
                    f"P95 {bucket['p95_ms']:.1f} ms); {steps}"
                )
    print(
        f"\nbenchmark took {time.perf_counter() - started:.0f} s; load average now "
        f"{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
