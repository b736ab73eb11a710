"""Audit verbs are an enum per app (``<app>/audit.py``), never string literals in app code.

Their values are what ``AuditEvent.verb`` stores and what the audit filter and the API match,
so they are checked here to stay unique and well-formed; app code passes enum members only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fleet.audit import FleetVerb
from modelregistry.audit import RegistryVerb
from opshero.audit import AuditVerb, PlatformVerb
from opshero.models import AuditEvent
from review.audit import ReviewVerb
from roi.audit import RoiVerb
from rollouts.audit import RolloutVerb
from telemetry.audit import TelemetryVerb

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "opshero",
    "fleet",
    "modelregistry",
    "roi",
    "telemetry",
    "review",
    "rollouts",
)  # those present
VERB_ENUMS = (
    PlatformVerb,
    FleetVerb,
    RegistryVerb,
    RoiVerb,
    TelemetryVerb,
    ReviewVerb,
    RolloutVerb,
)


def test_every_verb_enum_derives_from_the_platform_base():
    assert set(AuditVerb.__subclasses__()) >= set(VERB_ENUMS)


def test_verb_values_are_unique_and_fit_the_stored_column():
    values = [member.value for enum in AuditVerb.__subclasses__() for member in enum]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    assert not duplicates, f"Verbs used by two enums: {duplicates}"
    limit = AuditEvent._meta.get_field("verb").max_length
    bad = [v for v in values if not re.fullmatch(r"[a-z_]+\.[a-z_]+", v) or len(v) > limit]
    assert not bad, f"Verbs must be <noun>.<verb> in lower case, at most {limit} characters: {bad}"


def test_a_verb_is_a_str_and_is_stored_as_its_value():
    assert isinstance(FleetVerb.SITE_CREATED, str)
    assert FleetVerb.SITE_CREATED == "site.created"
    assert f"{FleetVerb.SITE_CREATED}" == str(FleetVerb.SITE_CREATED) == "site.created"


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _verb_literals(source: str, known: set[str]) -> list[tuple[int, str]]:
    """Strings given as ``record_audit_event(verb=...)`` (also inside ``a if c else b``), and
    anywhere else strings equal to a known verb (a helper taking the verb, a filter)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in known:
            found.add((node.lineno, node.value))
        if isinstance(node, ast.Call) and _called_name(node) == "record_audit_event":
            for keyword in node.keywords:
                if keyword.arg == "verb":
                    found |= {
                        (inner.lineno, inner.value)
                        for inner in ast.walk(keyword.value)
                        if isinstance(inner, ast.Constant) and isinstance(inner.value, str)
                    }
    return sorted(found)


KNOWN = {member.value for enum in VERB_ENUMS for member in enum}


def test_the_scan_finds_literal_verbs():
    source = (
        'record_audit_event(verb="a.b")\n'
        'services.record_audit_event(verb=V.A if c else "c.d")\n'
        "record_audit_event(verb=V.A)\n"
        "record_audit_event(verb=verb)\n"
        '_retire(key, actor, "signing_key.retired")\n'
        'AuditEvent.objects.filter(verb="site.created")\n'
        'selectors.audit_filter(verb=params.get("verb", ""))\n'
    )
    assert _verb_literals(source, KNOWN) == [
        (1, "a.b"),
        (2, "c.d"),
        (5, "signing_key.retired"),
        (6, "site.created"),
    ]


def test_app_code_passes_verb_enum_members_not_strings():
    offenders = []
    for app in APPS:
        folder = ROOT / app
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or "tests" in relative.parts:
                continue
            if relative.name == "audit.py":  # where the values are defined
                continue
            offenders += [
                f"{relative.as_posix()}:{line}: {value!r}"
                for line, value in _verb_literals(path.read_text(), KNOWN)
            ]
    assert not offenders, "Use the app's verb enum (<app>/audit.py):\n" + "\n".join(offenders)
