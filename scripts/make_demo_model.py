"""Build the demo registry's digits classifier and its labelled inputs (committed files).

Re-run after changing the recipe (needs the dev extras: ``pip install -e '.[dev]'``)::

    .venv/bin/python scripts/make_demo_model.py

It writes ``modelregistry/demo_data/digits.onnx`` and ``digits_inputs.npz`` and prints the
held-out accuracy; copy that figure into ``modelregistry/demo_data/README.md``. ``make run``
only reads the committed files, so it needs neither scikit-learn nor skl2onnx.

The data is scikit-learn's bundled 8x8 handwritten digits (1,797 images, nothing is
downloaded). The model reads the raw pixel values (0..16, float32, ``[N, 64]``) and answers
``label`` (int64) and ``probabilities`` ``[N, 10]`` (zipmap disabled, so the class scores are a
plain tensor). The ``.npz`` holds the held-out samples in the layout
``onnxcheck.inputs.load_representative_inputs`` expects: one array per model input, named after
it (``X``), plus ``labels`` (int64 class indices).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "modelregistry" / "demo_data"
SEED = 0
HELD_OUT = 300
INPUT_NAME = "X"


def build(out_dir: Path = OUT_DIR) -> float:
    """Train, export and write both files; return the held-out accuracy (onnxruntime)."""
    import onnx
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    features, targets = load_digits(return_X_y=True)
    features = features.astype(np.float32)  # raw pixel values 0..16; no scaling outside
    x_train, x_test, y_train, y_test = train_test_split(
        features, targets, test_size=HELD_OUT, random_state=SEED, stratify=targets
    )
    # One BLAS thread: deterministic and, on a busy 2-core machine, much faster.
    with threadpool_limits(limits=1):
        classifier = MLPClassifier((64,), max_iter=500, random_state=SEED).fit(x_train, y_train)
    model = to_onnx(
        classifier,
        x_train[:1],
        options={id(classifier): {"zipmap": False}},
    )
    model.graph.name = "handwritten_digits"
    model.doc_string = (
        "scikit-learn MLPClassifier((64,)) trained on scikit-learn's bundled 8x8 digits; "
        "input X float32 [N, 64] raw pixels 0..16; outputs label and probabilities [N, 10]."
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "digits.onnx"
    onnx.save(model, model_path)
    np.savez(out_dir / "digits_inputs.npz", **{INPUT_NAME: x_test}, labels=y_test.astype(np.int64))

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    labels, _ = session.run(None, {INPUT_NAME: x_test})
    return float(np.mean(labels == y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    accuracy = build(args.out_dir)
    print(f"wrote {args.out_dir}/digits.onnx and digits_inputs.npz")
    print(f"held-out accuracy (onnxruntime, {HELD_OUT} samples): {accuracy:.4f}")


if __name__ == "__main__":
    main()
