"""The reviewed-accuracy gate of a rollout wave: off by default, "not evaluated" below the
minimum of reviews (never a pass), then fail or pass against the baseline or a floor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from protocol import telemetry as wire
from rollouts import analysis
from rollouts.analysis import REVIEW_CHECK, Outcome, Thresholds, reviewed_accuracy
from rollouts.planning import AnalysisSettings
from tests.review.conftest import (  # noqa: F401 - fixtures
    dock,
    evidence_root,
    gateway,
    version,
)
from tests.review.test_field_source import audit_cases, make_reviews

# --- the pure check -----------------------------------------------------------------------------


def _judge(cand, cand_n, base, base_n, **limits):
    return reviewed_accuracy(
        candidate_correct=cand,
        candidate_reviews=cand_n,
        baseline_correct=base,
        baseline_reviews=base_n,
        limits=Thresholds(**limits),
    )


def test_the_gate_is_off_unless_the_rollout_sets_a_minimum():
    assert Thresholds().min_reviews == 0
    assert _judge(10, 200, 190, 200) is None


def test_below_the_minimum_it_is_not_evaluated_never_passed():
    verdict = _judge(3, 3, 100, 100, min_reviews=30)
    assert verdict.check == REVIEW_CHECK
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.figures["evaluated"] is False
    assert "not evaluated: only 3 reviews" in verdict.summary
    assert not analysis.counts_in_overall(verdict)


def test_a_clear_drop_fails():
    # 150/200 vs 190/200. Agresti-Caffo: p1 151/202 = 0.74752, p2 191/202 = 0.94554,
    # half 1.96 * sqrt(0.74752 * 0.25248 / 202 + 0.94554 * 0.05446 / 202) = 0.06759
    # -> difference CI (-0.2656, -0.1304): the smallest drop, 13 pp, is over the 5 pp limit.
    verdict = _judge(150, 200, 190, 200, min_reviews=30)
    assert verdict.outcome is Outcome.FAIL
    low, high = verdict.figures["difference_ci"]
    assert low == pytest.approx(-0.2656, abs=1e-3) and high == pytest.approx(-0.1304, abs=1e-3)
    assert analysis.counts_in_overall(verdict)


def test_equal_accuracy_passes_within_the_margin():
    # 190/200 both: half 1.96 * sqrt(2 * 0.94554 * 0.05446 / 202) = 0.04426 < 0.05.
    verdict = _judge(190, 200, 190, 200, min_reviews=30)
    assert verdict.outcome is Outcome.PASS
    assert verdict.figures["difference_ci"][0] == pytest.approx(-0.04426, abs=1e-3)


def test_a_small_sample_straddling_the_margin_is_inconclusive():
    verdict = _judge(27, 30, 28, 30, min_reviews=30)
    assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.figures["evaluated"] is True


def test_without_a_baseline_only_a_floor_judges():
    no_floor = _judge(30, 30, 0, 0, min_reviews=30)
    assert no_floor.figures["evaluated"] is False and "no accuracy floor" in no_floor.summary
    # 30/30: Wilson low 0.8865 >= 0.8 -> pass; 20/30: Wilson high 0.8077 < 0.85 -> fail.
    assert _judge(30, 30, 0, 0, min_reviews=30, reviewed_accuracy_floor=0.8).outcome is Outcome.PASS
    assert (
        _judge(20, 30, 0, 0, min_reviews=30, reviewed_accuracy_floor=0.85).outcome is Outcome.FAIL
    )


def test_thresholds_store_and_refuse_the_new_limits():
    stored = Thresholds(min_reviews=40, max_reviewed_accuracy_drop=0.03).to_dict()
    assert Thresholds.from_dict(stored).min_reviews == 40
    assert Thresholds.from_dict({}).min_reviews == 0  # thresholds stored before the gate
    with pytest.raises(ValueError):
        Thresholds(min_reviews=-1)
    with pytest.raises(ValueError):
        Thresholds(reviewed_accuracy_floor=1.5)


# --- the gate on a rollout's reviews --------------------------------------------------------------


@pytest.fixture
def candidate(version):  # noqa: F811 - the fixture imported above
    from modelregistry.models import ModelVersion

    return ModelVersion.objects.create(
        model=version.model,
        version="v4",
        artifact="artifacts/parcel-damage-v4.onnx",
        file_name="parcel-damage-v4.onnx",
        sha256="b" * 64,
        size_bytes=1024,
        io_contract=version.io_contract,
    )


def _ref(candidate) -> wire.ModelRef:
    return wire.ModelRef(
        name=candidate.model.name, version=candidate.version, sha256=candidate.sha256
    )


@pytest.fixture
def rollout(world, gateway, version, candidate):  # noqa: F811
    from opshero.roles import Role
    from rollouts.models import DeploymentAction, Rollout, Wave

    device, _ = gateway
    now = timezone.now()
    rollout = Rollout.objects.create(
        organization=world.a.org,
        model=version.model,
        version=candidate,
        name="v4 to the docks",
        status="running",
        seed=1,
        created_by=world.a.user(Role.APPROVER),
        submitted_at=now - timedelta(hours=2),
        started_at=now - timedelta(hours=1),
    )
    wave = Wave.objects.create(rollout=rollout, number=0, name="Canary", device_count=1)
    DeploymentAction.objects.create(
        organization=world.a.org,
        rollout=rollout,
        wave=wave,
        device=device,
        model=version.model,
        site_id=device.site_id,
        previous_version=version,
    )
    return rollout


def _settings(**limits) -> AnalysisSettings:
    return AnalysisSettings(thresholds=Thresholds(**limits))


def test_a_wave_with_few_reviews_is_not_evaluated(client, world, gateway, candidate, rollout):  # noqa: F811
    from rollouts.engine import review_verdict

    make_reviews(client, gateway, audit_cases(3, 0), model=_ref(candidate))
    verdict = review_verdict(
        rollout, rollout.waves.get(), _settings(min_reviews=10), timezone.now()
    )
    assert verdict.figures["evaluated"] is False
    assert verdict.figures["candidate_reviews"] == 3
    assert "only 3 reviews" in verdict.summary
    assert review_verdict(rollout, rollout.waves.get(), _settings(), timezone.now()) is None


def test_a_worse_candidate_fails_against_the_previous_version(
    client,
    world,
    gateway,  # noqa: F811
    candidate,
    rollout,
):
    from rollouts.engine import review_verdict

    # Baseline (v3 at the same dock): 12 of 12 right. Candidate v4: 4 of 12.
    # Agresti-Caffo: 5/14 - 13/14 = -0.571, half 1.96 * sqrt(.357 * .643 / 14 + .929 * .071 / 14)
    # = 0.285 -> the drop is at least 28.6 pp, over the 5 pp allowed.
    make_reviews(client, gateway, audit_cases(12, 0))
    make_reviews(client, gateway, audit_cases(4, 8), model=_ref(candidate))
    verdict = review_verdict(
        rollout, rollout.waves.get(), _settings(min_reviews=10), timezone.now()
    )
    assert verdict.outcome is Outcome.FAIL
    assert (verdict.figures["candidate_reviews"], verdict.figures["baseline_reviews"]) == (12, 12)
    assert verdict.figures["candidate_accuracy"] == pytest.approx(4 / 12)


def test_a_good_candidate_passes_the_floor_without_a_baseline(
    client,
    world,
    gateway,  # noqa: F811
    candidate,
    rollout,
):
    from rollouts.engine import review_verdict

    # 12/12: Wilson low (1 + 0.16006) / 1.32012 - 0.12125 = 0.7575 >= the 0.7 floor.
    make_reviews(client, gateway, audit_cases(12, 0), model=_ref(candidate))
    verdict = review_verdict(
        rollout,
        rollout.waves.get(),
        _settings(min_reviews=10, reviewed_accuracy_floor=0.7),
        timezone.now(),
    )
    assert verdict.outcome is Outcome.PASS
    assert verdict.figures["candidate_ci"][0] == pytest.approx(0.7575, abs=1e-3)


def _soaked(rollout):
    from rollouts.models import Wave

    wave = rollout.waves.get()
    now = timezone.now()
    Wave.objects.filter(pk=wave.pk).update(
        status="soaking",
        started_at=now - timedelta(minutes=50),
        soak_started_at=now - timedelta(minutes=40),
        soak_until=now - timedelta(minutes=1),
    )
    return rollout.waves.get(), now


def test_the_engine_stores_the_gate_and_a_failing_one_pauses_the_wave(
    client,
    world,
    gateway,  # noqa: F811
    candidate,
    rollout,
):
    from rollouts.engine import _judge
    from rollouts.models import CanaryVerdict

    make_reviews(client, gateway, audit_cases(12, 0))
    make_reviews(client, gateway, audit_cases(4, 8), model=_ref(candidate))
    wave, now = _soaked(rollout)
    settings = AnalysisSettings(thresholds=Thresholds(min_reviews=10), auto_rollback=False)
    assert _judge(rollout, wave, settings, now, {}) is False
    stored = CanaryVerdict.objects.get(wave=wave, check_name=REVIEW_CHECK)
    assert stored.outcome == "fail" and stored.figures["evaluated"] is True
    rollout.refresh_from_db()
    assert rollout.status == "paused"
    assert "reviewed accuracy" in rollout.hold_reason.lower()


def test_the_engine_shows_a_gate_not_evaluated_without_it_deciding(
    client,
    world,
    gateway,  # noqa: F811
    candidate,
    rollout,
):
    from rollouts.engine import _judge
    from rollouts.models import CanaryVerdict

    make_reviews(client, gateway, audit_cases(2, 0), model=_ref(candidate))
    wave, now = _soaked(rollout)
    settings = AnalysisSettings(thresholds=Thresholds(min_reviews=10), auto_rollback=False)
    _judge(rollout, wave, settings, now, {})
    stored = CanaryVerdict.objects.get(wave=wave, check_name=REVIEW_CHECK)
    assert stored.figures["evaluated"] is False and "only 2 reviews" in stored.summary
    # The other checks (no telemetry: inconclusive) decide: the soak is extended, not failed.
    wave.refresh_from_db()
    rollout.refresh_from_db()
    assert wave.extended is True and rollout.status == "running"
    # The rollout page labels it "not evaluated", never "pass".
    from django.urls import reverse

    from opshero.roles import Role

    client.force_login(world.a.user(Role.VIEWER))
    page = client.get(
        reverse("rollouts:detail", kwargs={"org": world.a.org.slug, "rollout_id": rollout.pk})
    ).content.decode()
    assert f'data-check="{REVIEW_CHECK}" data-outcome="not_evaluated"' in page
    assert "Not evaluated" in page
