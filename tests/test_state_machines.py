"""Nothing in app code changes a ``status`` except the state machines' transition functions.

An AST scan of every app module (not tests, not migrations): an assignment to ``<x>.status``
(plain, augmented or annotated), ``setattr(<x>, "status", ...)`` or ``<qs>.update(status=...)``
outside the functions below fails the suite. A new state machine adds its transition
function to ``TRANSITION_FUNCTIONS``; nothing else does.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The apps present.
APPS = ("opshero", "fleet", "modelregistry", "roi", "telemetry", "review", "rollouts")
TRANSITION_FUNCTIONS = {
    ("modelregistry/services.py", "transition_version"),
    ("modelregistry/services.py", "transition_run"),
    ("fleet/services.py", "transition_device"),
    ("modelregistry/signing_services.py", "transition_signing_key"),
    ("telemetry/notifications.py", "transition_notification"),
    ("telemetry/alerts.py", "transition_alert"),
    ("rollouts/transitions.py", "transition_rollout"),
    ("rollouts/transitions.py", "transition_wave"),
    ("rollouts/transitions.py", "transition_action"),
    ("rollouts/transitions.py", "transition_actions"),
    ("review/transitions.py", "transition_sample"),
    ("review/transitions.py", "transition_samples"),
    ("review/transitions.py", "transition_export"),
}


def _status_targets(target: ast.expr) -> list[ast.Attribute]:
    """``x.status`` targets of one assignment target, including inside tuple unpacking."""
    if isinstance(target, ast.Attribute) and target.attr == "status":
        return [target]
    if isinstance(target, ast.Tuple | ast.List):
        return [found for element in target.elts for found in _status_targets(element)]
    if isinstance(target, ast.Starred):
        return _status_targets(target.value)
    return []


def _writes_status(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign):
        return any(_status_targets(target) for target in node.targets)
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return bool(_status_targets(node.target))
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "update":
            return any(keyword.arg == "status" for keyword in node.keywords)
        if isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) >= 2:
            name = node.args[1]
            return isinstance(name, ast.Constant) and name.value == "status"
    return False


def status_writes(source: str) -> list[tuple[int, str | None, str]]:
    """(line, enclosing function or None, code) of every status write in ``source``."""
    found: list[tuple[int, str | None, str]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if _writes_status(node):
            found.append((node.lineno, function, ast.get_source_segment(source, node) or ""))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def _app_modules() -> list[Path]:
    modules = []
    for app in APPS:
        folder = ROOT / app
        if folder.is_dir():
            modules += [
                path
                for path in sorted(folder.rglob("*.py"))
                if "migrations" not in path.relative_to(ROOT).parts
                and "tests" not in path.relative_to(ROOT).parts
            ]
    return modules


def test_the_scan_sees_every_kind_of_status_write():
    source = """
def f(run, qs, a, b):
    run.status = "x"
    a.b.status = "x"
    first, run.status = 1, "x"
    run.status += "x"
    run.status: str = "x"
    setattr(run, "status", "x")
    qs.update(status="x", heartbeat_at=None)
run.status = "module level"
"""
    lines = [line for line, _, _ in status_writes(source)]
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10]
    assert status_writes(source)[-1][1] is None  # outside any function


def test_the_scan_ignores_reads_and_other_fields():
    source = """
def f(run, qs):
    if run.status == "x":
        run.error = run.status
    qs.filter(status="x").update(heartbeat_at=None)
    setattr(run, "steps", [])
    status = "local name"
    return {"status": status}
"""
    assert status_writes(source) == []


def test_the_transition_functions_exist_and_are_where_status_changes():
    writes_by_function: dict[tuple[str, str | None], int] = {}
    for path in _app_modules():
        relative = path.relative_to(ROOT).as_posix()
        for _, function, _ in status_writes(path.read_text()):
            key = (relative, function)
            writes_by_function[key] = writes_by_function.get(key, 0) + 1
    # Each allowed function still exists and still is the one place its machine moves.
    missing = sorted(TRANSITION_FUNCTIONS - set(writes_by_function))
    assert not missing, f"Transition functions not found or no longer writing status: {missing}"


def test_nothing_else_in_app_code_assigns_a_status():
    modules = _app_modules()
    assert {path.relative_to(ROOT).parts[0] for path in modules} >= {
        "opshero",
        "fleet",
        "modelregistry",
        "roi",
    }
    offenders = []
    for path in modules:
        relative = path.relative_to(ROOT).as_posix()
        for line, function, code in status_writes(path.read_text()):
            if (relative, function) not in TRANSITION_FUNCTIONS:
                where = f"in {function}()" if function else "at module level"
                offenders.append(f"{relative}:{line} {where}: {code.splitlines()[0]}")
    assert not offenders, (
        "Status changes go through the state machine's transition function "
        "(transition_version, transition_run, transition_device, transition_signing_key):\n"
        + "\n".join(offenders)
    )
