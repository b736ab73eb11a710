"""Isolation probes for the rollout pages (merged into tests/isolation.py CASES)."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse

from opshero.roles import Role
from tests.factories import World
from tests.isolation import Probe


def _pending(world: World):
    from rollouts import services
    from tests.rollouts.fleet import build

    made = build(world, sites=2, per_site=2)
    rollout = services.create_rollout(
        organization=made.org,
        actor=made.planner,
        role=Role.APPROVER,
        version=made.candidate,
        site_ids=[s.pk for s in made.sites],
        canary_site_ids=[made.sites[0].pk],
        seed=3,
    )
    services.submit_rollout(rollout=rollout, actor=made.planner, role=Role.APPROVER)
    return made, rollout


def _url(name: str, world: World, **kwargs) -> str:
    return reverse(name, kwargs={"org": world.a.org.slug, **kwargs})


def _page(name: str, role: str = Role.VIEWER) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        _pending(world)
        return [Probe("GET", _url(name, world), insider_role=role)]

    return build


def _detail(world: World) -> list[Probe]:
    _, rollout = _pending(world)
    url = _url("rollouts:detail", world, rollout_id=rollout.pk)
    return [Probe("GET", url, insider_role=Role.VIEWER)]


def _preview(world: World) -> list[Probe]:
    from rollouts.forms import wave_initial

    made, _ = _pending(world)
    rows = wave_initial()
    data = {
        "version": made.candidate.pk,
        "sites": [s.pk for s in made.sites],
        "canary_sites": [made.sites[0].pk],
        "wave-TOTAL_FORMS": len(rows),
        "wave-INITIAL_FORMS": 0,
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"wave-{index}-{key}"] = "" if value is None else value
    return [Probe("POST", _url("rollouts:preview", world), data=data, insider_role=Role.ADMIN)]


def _control(world: World) -> list[Probe]:
    from rollouts.models import Rollout

    _, rollout = _pending(world)
    url = _url("rollouts:control", world, rollout_id=rollout.pk, verb="withdraw")

    def state():
        return list(Rollout.objects.filter(pk=rollout.pk).values_list("status", "submitted_at"))

    return [Probe("POST", url, data={}, insider_role=Role.ADMIN, insider_status=302, state=state)]


CASES: dict[str, Callable[[World], list[Probe]]] = {
    "rollouts:list": _page("rollouts:list"),
    "rollouts:new": _page("rollouts:new", Role.ADMIN),
    "rollouts:preview": _preview,
    "rollouts:approvals": _page("rollouts:approvals"),
    "rollouts:detail": _detail,
    "rollouts:control": _control,
}
