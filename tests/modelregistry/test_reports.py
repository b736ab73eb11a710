"""The version page's compatibility figures name the graph they are about."""

from __future__ import annotations

from django.template.loader import render_to_string

from modelregistry.reports import compatibility_view


def _fixed(label: str, nodes: int, supported: int, partitions: int) -> dict:
    return {
        "graph": label,
        "node_count": nodes,
        "supported_node_count": supported,
        "unsupported_node_count": nodes - supported,
        "partitions": partitions,
        "partition_sizes": [supported],
    }


def test_old_reports_get_their_graph_from_the_analysed_description():
    optimised = compatibility_view(
        {
            "graph_analysed": "after onnxruntime basic optimisation (…)",
            "uploaded_node_count": 12,
            "node_count": 9,
        }
    )
    assert optimised["graph"] == "optimised"
    assert optimised["node_count_note"] == (
        "the uploaded graph has 12 nodes; the analysed graph (optimised) has 9"
    )
    uploaded = compatibility_view({"graph_analysed": "as uploaded (onnxruntime could not …)"})
    assert uploaded["graph"] == "original"
    assert uploaded["per_graph"] == []


def test_one_row_per_bucket_graph_with_the_reconciled_node_count():
    data = {
        "graph": "fixed to x=1x3x48x192",
        "uploaded_node_count": 6,
        "node_count": 3,
        "node_count_note": "the uploaded graph has 6 nodes; the analysed graph "
        "(fixed to x=1x3x48x192) has 3: onnxruntime's constant folding and fusions remove 3",
        "fixed_graphs": [
            _fixed("fixed to x=1x3x48x192", 3, 3, 1),
            {"graph": "fixed to x=1x3x96x96", "error": "input 'x': Rank mismatch"},
        ],
    }
    view = compatibility_view(data)
    assert len(view["per_graph"]) == 2
    html = render_to_string(
        "modelregistry/partials/compatibility_graphs.html", {"compatibility": view}
    )
    assert (
        "The uploaded graph has 6 nodes; the analysed graph (fixed to x=1x3x48x192) has 3" in html
    )
    assert "fixed to x=1x3x96x96" in html and "Rank mismatch" in html
    assert 'data-testid="compatibility-graphs"' in html


def test_a_single_graph_needs_no_table():
    view = compatibility_view(
        {"graph": "fixed to x=1x8", "fixed_graphs": [_fixed("fixed to x=1x8", 2, 2, 1)]}
    )
    assert view["per_graph"] == []
    html = render_to_string(
        "modelregistry/partials/compatibility_graphs.html", {"compatibility": view}
    )
    assert "compatibility-graphs" not in html


def test_the_checkers_literal_reading_is_shown_when_it_differs():
    literal = {
        "node_count": 3,
        "supported_node_count": 2,
        "partitions": 2,
        "note": "onnxruntime's usability checker reads the operator table literally and does not "
        "find ai.onnx:ArgMax (spelt otherwise in the table), so it counts 1 unsupported node(s) "
        "and 2 partition(s) where these figures count the operator as supported",
    }
    view = compatibility_view({"graph": "fixed to x=1x10", "checker_literal": literal})
    html = render_to_string(
        "modelregistry/partials/compatibility_graphs.html", {"compatibility": view}
    )
    assert "does not find ai.onnx:ArgMax" in html and "2 of 3 nodes, 2 partitions" in html
