"""The I/O contract: strict parsing, every refusal, and the check against a graph's outputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol.contract import (
    IoContract,
    Preprocessing,
    check_contract_against_outputs,
    resolve_score_output,
)

DIGIT_LABELS = tuple(str(digit) for digit in range(10))


def preprocessing(**overrides: object) -> Preprocessing:
    fields: dict[str, object] = {
        "layout": "NCHW",
        "scale": 1 / 255,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "color_order": "RGB",
    }
    fields.update(overrides)
    return Preprocessing(**fields)  # type: ignore[arg-type]


def contract(**overrides: object) -> IoContract:
    fields: dict[str, object] = {
        "labels": DIGIT_LABELS,
        "score_output": "probabilities",
        "scores": "probabilities",
        "preprocessing": preprocessing(),
        "intended_use": "Reading handwritten digits on parcel labels.",
    }
    fields.update(overrides)
    return IoContract(**fields)  # type: ignore[arg-type]


def output(name: str, dtype: str | None, shape: list | None) -> dict:
    return {"name": name, "dtype": dtype, "shape": shape}


# skl2onnx's digits MLP without zipmap: an int64 label and a float [N, 10] score tensor.
DIGITS_OUTPUTS = [output("label", "int64", ["N"]), output("probabilities", "float32", ["N", 10])]


def test_round_trip_through_json_form() -> None:
    original = contract()
    data = original.to_dict()

    assert data == {
        "labels": list(DIGIT_LABELS),
        "score_output": "probabilities",
        "scores": "probabilities",
        "preprocessing": {
            "layout": "NCHW",
            "scale": 1 / 255,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "color_order": "RGB",
        },
        "intended_use": "Reading handwritten digits on parcel labels.",
    }
    assert IoContract.from_dict(data) == original


def test_integers_are_accepted_as_numbers_and_empty_normalisation_is_allowed() -> None:
    plain = preprocessing(layout="NC", scale=1, mean=(), std=(), color_order="none")

    assert plain.scale == 1.0
    assert Preprocessing.from_dict(plain.to_dict()) == plain


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": ()}, "at least one class label"),
        ({"labels": ("cat", "cat")}, r"labels\[1\] repeats the label 'cat'"),
        ({"labels": ("cat", "")}, r"labels\[1\] must be a non-empty string"),
        ({"labels": ("cat", 3)}, r"labels\[1\] must be a non-empty string"),
        ({"labels": ("x" * 201,)}, r"labels\[0\] is 201 characters, at most 200"),
        ({"labels": tuple(f"c{i}" for i in range(100_001))}, "at most 100000"),
        ({"score_output": ""}, "score_output"),
        ({"scores": "softmax"}, r"scores must be one of \['probabilities', 'logits'\]"),
        ({"intended_use": "x" * 2001}, "intended_use is 2001 characters, at most 2000"),
        ({"preprocessing": {"layout": "NCHW"}}, "preprocessing must be a Preprocessing"),
    ],
)
def test_contract_refuses_invalid_members(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        contract(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layout": "CHW"}, "preprocessing.layout must be one of"),
        ({"color_order": "rgb"}, "preprocessing.color_order must be one of"),
        ({"scale": 0}, r"preprocessing.scale must be > 0"),
        ({"scale": float("nan")}, "preprocessing.scale must be a finite number"),
        ({"scale": True}, "preprocessing.scale must be a finite number"),
        ({"mean": (0.5,), "std": ()}, "mean has 1 values and preprocessing.std has 0"),
        ({"std": (0.2, 0.0, 0.2)}, r"preprocessing.std\[1\] must be > 0"),
        ({"std": (0.2, -1.0, 0.2)}, r"preprocessing.std\[1\] must be > 0"),
        ({"mean": (0.5, "a", 0.5)}, r"preprocessing.mean\[1\] must be a finite number"),
    ],
)
def test_preprocessing_refuses_invalid_members(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocessing(**overrides)


def test_from_dict_refuses_unknown_and_missing_members() -> None:
    data = contract().to_dict()

    with pytest.raises(ValueError, match=r"io_contract has unknown members \['threshold'\]"):
        IoContract.from_dict({**data, "threshold": 0.5})
    with pytest.raises(ValueError, match=r"io_contract is missing \['intended_use'\]"):
        IoContract.from_dict({k: v for k, v in data.items() if k != "intended_use"})
    with pytest.raises(ValueError, match=r"preprocessing has unknown members \['resize'\]"):
        IoContract.from_dict({**data, "preprocessing": {**data["preprocessing"], "resize": 224}})
    with pytest.raises(ValueError, match=r"preprocessing is missing \['std'\]"):
        preprocessing_without_std = {k: v for k, v in data["preprocessing"].items() if k != "std"}
        IoContract.from_dict({**data, "preprocessing": preprocessing_without_std})
    with pytest.raises(ValueError, match="labels must be a list"):
        IoContract.from_dict({**data, "labels": "0123456789"})
    with pytest.raises(ValueError, match="io_contract must be an object"):
        IoContract.from_dict([data])


def test_replace_revalidates() -> None:
    with pytest.raises(ValueError, match="repeats"):
        replace(contract(), labels=("a", "a"))


# --- the contract against the graph ---------------------------------------------------------------


def test_a_matching_contract_has_no_problems() -> None:
    assert check_contract_against_outputs(contract(), DIGITS_OUTPUTS) == []
    assert resolve_score_output(contract(), DIGITS_OUTPUTS) == "probabilities"


def test_label_count_that_differs_from_the_class_dimension_is_a_problem() -> None:
    three = contract(labels=("cat", "dog", "bird"))

    assert check_contract_against_outputs(three, DIGITS_OUTPUTS) == [
        "3 labels but output 'probabilities' has 10 classes"
    ]


@pytest.mark.parametrize("dim", ["classes", None, -1])
def test_a_dynamic_class_dimension_is_accepted(dim: object) -> None:
    outputs = [output("probabilities", "float32", ["N", dim])]

    assert check_contract_against_outputs(contract(labels=("a", "b")), outputs) == []


def test_score_output_must_name_an_output() -> None:
    problems = check_contract_against_outputs(contract(score_output="scores"), DIGITS_OUTPUTS)

    assert problems == [
        "score_output 'scores' is not an output of the model (its outputs: 'label',"
        " 'probabilities')"
    ]
    assert resolve_score_output(contract(score_output="scores"), DIGITS_OUTPUTS) is None


def test_a_named_integer_output_cannot_hold_scores() -> None:
    problems = check_contract_against_outputs(contract(score_output="label"), DIGITS_OUTPUTS)

    assert problems == [
        "output 'label' is int64, but scores (probabilities) must be floating point"
    ]


def test_without_a_name_the_single_float_output_of_rank_2_is_chosen() -> None:
    unnamed = contract(score_output=None)

    assert resolve_score_output(unnamed, DIGITS_OUTPUTS) == "probabilities"
    assert check_contract_against_outputs(
        contract(score_output=None, labels=("a",)), DIGITS_OUTPUTS
    ) == ["1 labels but output 'probabilities' has 10 classes"]


def test_without_a_name_a_single_float_output_of_rank_1_is_chosen() -> None:
    outputs = [output("label", "int64", ["N"]), output("logits", "float16", [10])]

    assert resolve_score_output(contract(score_output=None, scores="logits"), outputs) == "logits"
    assert check_contract_against_outputs(contract(score_output=None), outputs) == []


def test_several_candidate_outputs_ask_for_a_name() -> None:
    outputs = [output("boxes", "float32", ["N", 4]), output("scores", "float32", ["N", 10])]

    problems = check_contract_against_outputs(contract(score_output=None), outputs)

    assert problems == [
        "the model has several floating-point outputs of rank 2 ('boxes', 'scores'):"
        " name the one holding the scores in score_output"
    ]
    assert resolve_score_output(contract(score_output=None), outputs) is None
    assert check_contract_against_outputs(contract(score_output="scores"), outputs) == []


def test_no_candidate_output_is_a_problem() -> None:
    outputs = [output("label", "int64", ["N"]), output("features", "float32", [1, 3, 7, 7])]

    problems = check_contract_against_outputs(contract(score_output=None), outputs)

    assert problems == [
        "the model has no floating-point output of rank 1 or 2 to read scores from:"
        " name the score output in score_output"
    ]
