"""The plan's task table gives exactly the tasks the old ``if``-chain gave, for every input.

``reference_tasks`` below is the ``_tasks`` function as it was before the tasks became a data
table (``roi.plan.TASK_ROWS``), copied unchanged apart from its name: the table must generate the
same ids, phases, titles, details, owners, statuses and sources, in the same order, for a grid
of wizard answers that covers every condition the old code branched on.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from roi.plan import PHASE_KEYS, OwnerRole, PlanTask, TaskStatus, generate_plan
from roi.rules import (
    LOCAL_TIERS,
    ExistingHardware,
    ModelComplexity,
    PlanningInputError,
    PrivacyRisk,
    Tier,
    WizardAnswers,
    WizardResult,
    Workflow,
    decide,
)

# --- the old function, verbatim ----------------------------------------------------------------

_REFERENCE_SEED = "playbook: 90-day plan"


def reference_tasks(result: WizardResult) -> list[PlanTask]:
    answers = result.answers
    tiers = set(result.all_tiers)
    inference = set(result.inference_tiers)
    local = bool(inference & set(LOCAL_TIERS))
    cloud_inference = Tier.CLOUD in inference
    private = answers.privacy_risk is PrivacyRisk.HIGH or answers.phi_involved
    hardware = answers.hardware
    # A helper tier the rules marked optional gets its tasks, labelled as optional.
    optional = {part.tier for part in result.parts if part.optional} - inference
    tasks: list[PlanTask] = []

    def maybe(tier: Tier, title: str) -> str:
        return f"Optional: {title[0].lower()}{title[1:]}" if tier in optional else title

    def add(
        task_id: str,
        phase: str,
        title: str,
        detail: str,
        owner: OwnerRole,
        *,
        source: str = _REFERENCE_SEED,
        status: TaskStatus = TaskStatus.TODO,
    ) -> None:
        tasks.append(PlanTask(task_id, phase, title, detail, owner, status, source))

    p1, p2, p3, p4 = PHASE_KEYS
    # Days 1-15: the assessment already did two of the seed's three steps.
    add(
        "pick_workflow",
        p1,
        "Pick one workflow with clear operational impact",
        f"Assessed workflow: {answers.workflow.value.replace('_', ' ')}.",
        OwnerRole.PLANNER,
        status=TaskStatus.DONE,
    )
    add(
        "decide_placement",
        p1,
        "Decide inference placement using the decision rules",
        f"{result.summary} (ruleset {result.ruleset_version}).",
        OwnerRole.PLANNER,
        status=TaskStatus.DONE,
    )
    add(
        "define_success_metrics",
        p1,
        "Define success metrics: latency targets, offline coverage, accuracy threshold, and "
        "support KPIs",
        "Draft targets are generated below; confirm or adjust them before building.",
        OwnerRole.PLANNER,
        status=TaskStatus.DOING,
    )
    if local and not hardware:
        add(
            "score_stacks_before_buying",
            p1,
            "Score two or three candidate stacks before buying hardware",
            "Use the stack scorecard; \u201cwe picked the hardware first\u201d is the playbook's "
            "first failure mode.",
            OwnerRole.PLANNER,
            source="tailored: no existing hardware",
        )
    if private:
        add(
            "design_data_minimisation",
            p1,
            "Design data minimisation: what leaves the device or gateway",
            "Send predictions and events, not raw sensitive media; decide what is stored "
            "locally and when it is deleted.",
            OwnerRole.PLANNER,
            source="tailored: high privacy risk or PHI",
        )
    if answers.phi_involved:
        add(
            "label_ai_assistance",
            p1,
            "Agree user-facing labelling: AI assistance vs clinical decision",
            "Seed healthcare control; agree it with clinical leads before the prototype.",
            OwnerRole.PLANNER,
            source="tailored: PHI",
        )
    if cloud_inference:
        add(
            "confirm_cloud_governance",
            p1,
            "Confirm data governance allows sending these inputs to the cloud",
            "Cloud inference fits only when \u201cdata governance allows sending inputs to the "
            "cloud\u201d.",
            OwnerRole.PLANNER,
            source="tailored: cloud inference",
        )

    # Days 16-45: build a reference deployment.
    if local:
        runtime_detail = (
            "Run an early conversion spike that covers your exact operators and data shapes; "
            "record operator coverage, INT8/FP16 accuracy drop and P95 on the target."
        )
    else:
        runtime_detail = "Select the serving runtime and confirm the model loads unchanged."
    add(
        "select_runtime",
        p2,
        "Select a runtime stack and validate model conversion",
        runtime_detail,
        OwnerRole.APPROVER,
    )
    payload = (
        f"{answers.payload_kb:g} KB at {answers.inferences_per_device_per_minute:g} per device "
        "per minute"
        if answers.payload_kb
        else "the payload sizes and rates seen in the field"
    )
    add(
        "prototype_real_payloads",
        p2,
        "Prototype with real payloads",
        f"Use {payload}; measure the latency distribution, not just averages.",
        OwnerRole.APPROVER,
    )
    add(
        "device_identity",
        p2,
        "Implement device identity",
        "Enroll each device or gateway with a one-time token and its own key.",
        OwnerRole.ADMIN,
    )
    add(
        "signed_model_loading",
        p2,
        "Implement signed model loading",
        "Devices load only models whose signature verifies against the organisation's key.",
        OwnerRole.ADMIN,
    )
    add(
        "structured_events",
        p2,
        "Implement structured event output",
        "Emit predictions, confidence and model version as events; sync only what you need.",
        OwnerRole.APPROVER,
    )
    if Tier.NEAR_EDGE in tiers:
        add(
            "provision_gateways",
            p2,
            maybe(
                Tier.NEAR_EDGE, "Provision site gateways: hardware, power, network and enrollment"
            ),
            f"One gateway serves the {answers.devices_per_site} device(s) at each site; plan "
            "power, cooling and local log retention.",
            OwnerRole.ADMIN,
            source="tailored: near-edge",
        )
    if Tier.ON_DEVICE in tiers:
        add(
            "package_model_for_devices",
            p2,
            maybe(
                Tier.ON_DEVICE, "Package the model for the device runtime and ship it in the app"
            ),
            "Quantised model within the app's size budget; offline-first UX so the workflow "
            "completes without a network.",
            OwnerRole.APPROVER,
            source="tailored: on-device",
        )
        add(
            "show_model_version",
            p2,
            maybe(Tier.ON_DEVICE, "Show the model version in the app for support"),
            "Seed field-service control: support needs to know which model answered.",
            OwnerRole.APPROVER,
            source="tailored: on-device",
        )
    if local and cloud_inference:
        add(
            "define_escalation_contract",
            p2,
            "Define which cases go to which tier and what syncs",
            "Which cases escalate to the cloud, and whether features, embeddings, predictions "
            "or aggregated metrics are synced.",
            OwnerRole.PLANNER,
            source="tailored: hybrid",
        )
    if private:
        add(
            "encrypt_and_retain",
            p2,
            "Encrypt at rest and in transit; delete raw inputs on schedule",
            "Store raw inputs securely only as long as needed.",
            OwnerRole.ADMIN,
            source="tailored: high privacy risk or PHI",
        )
    if answers.phi_involved:
        add(
            "audit_and_access",
            p2,
            "Audit logs and least-privilege access for PHI",
            "Seed healthcare control: signed artifacts, audit logs, access controls.",
            OwnerRole.ADMIN,
            source="tailored: PHI",
        )
    if local and answers.model_changes_per_year >= 12:
        add(
            "automate_rollout",
            p2,
            "Automate staged rollout and rollback before the first site",
            f"{answers.model_changes_per_year:g} model changes a year must reach every device "
            "without manual work.",
            OwnerRole.APPROVER,
            source="tailored: frequent model changes at the edge",
        )

    # Days 46-70: field-like tests.
    if local:
        outage = answers.longest_outage_hours
        offline_detail = (
            f"Cut connectivity for {outage:g} h (the longest outage answered) and confirm the "
            "workflow completes; check what happens to logs and telemetry."
            if outage
            else "Cut connectivity and confirm the workflow completes; check what happens to "
            "logs and telemetry."
        )
    else:
        offline_detail = "Confirm the workflow degrades safely when the cloud is unreachable."
    add("test_offline", p3, "Test offline scenarios", offline_detail, OwnerRole.APPROVER)
    if local:
        add(
            "validate_power_thermal",
            p3,
            "Validate power/thermal behavior",
            "Run continuously and measure the slowdown after 10 and 20 minutes.",
            OwnerRole.APPROVER,
        )
    add(
        "capture_observability",
        p3,
        "Capture observability data: latency, confidence, failure modes",
        "Check drift can be measured without streaming everything.",
        OwnerRole.APPROVER,
    )
    if Tier.NEAR_EDGE in tiers:
        add(
            "gateway_failure_test",
            p3,
            maybe(Tier.NEAR_EDGE, "Test the site when the gateway restarts or loses the WAN"),
            "Devices keep working against the gateway; local logs are kept and synced later.",
            OwnerRole.APPROVER,
            source="tailored: near-edge",
        )
    if Tier.ON_DEVICE in tiers:
        add(
            "full_shift_device_test",
            p3,
            maybe(Tier.ON_DEVICE, "Run a full shift on the devices"),
            "Battery, heat and latency at the end of the shift, not only at the start.",
            OwnerRole.APPROVER,
            source="tailored: on-device",
        )
    if cloud_inference:
        add(
            "cloud_latency_from_site",
            p3,
            "Measure end-to-end P95 time-to-action from a real site",
            f"Capture to UI update against the {answers.latency_tolerance_ms:g} ms tolerance.",
            OwnerRole.APPROVER,
            source="tailored: cloud inference",
        )
    if answers.workflow is Workflow.LOGISTICS_DOCK_VISION:
        add(
            "tune_confidence_thresholds",
            p3,
            "Tune confidence thresholds per lane/site; route low-confidence cases to a human",
            "Seed dock-vision controls: human-in-the-loop for low-confidence cases.",
            OwnerRole.PLANNER,
            source="tailored: logistics dock vision",
        )

    # Days 71-90: staged rollout.
    add(
        "start_with_pilot_sites",
        p4,
        "Start with 1-2 sites",
        f"Pick the pilot sites out of {answers.sites}.",
        OwnerRole.PLANNER,
    )
    add(
        "staged_releases",
        p4,
        "Use staged model releases and rollback",
        "Canary site first, then waves; rehearse a rollback before it is needed.",
        OwnerRole.APPROVER,
    )
    feedback = (
        "Post-job feedback in the app: thumbs up/down + reason."
        if answers.workflow is Workflow.FIELD_SERVICE_TRIAGE
        else "Operators flag wrong predictions; reviewed cases feed retraining."
    )
    add(
        "operator_feedback_loop",
        p4,
        "Build a feedback loop from operators to model improvement",
        feedback,
        OwnerRole.PLANNER,
    )
    if answers.phi_involved:
        add(
            "compliant_retraining",
            p4,
            "Agree the compliance-approved retraining pipeline",
            "Seed healthcare pattern: the cloud retrains on de-identified data only.",
            OwnerRole.PLANNER,
            source="tailored: PHI",
        )
    if local and answers.sites > 2:
        add(
            "plan_remaining_waves",
            p4,
            "Plan the waves for the remaining sites",
            f"{answers.sites - 2} more site(s) after the pilot; gates on measured metrics.",
            OwnerRole.APPROVER,
            source="tailored: multi-site local inference",
        )
    add(
        "recompute_roi_with_measurements",
        p4,
        "Recompute the ROI scenario with measured values",
        "Replace assumptions with what the pilot measured and compare planned vs measured.",
        OwnerRole.PLANNER,
        source="OpsHero: planned vs measured",
    )
    return tasks


# --- the grid ----------------------------------------------------------------------------------

BASE = WizardAnswers(
    workflow=Workflow.CUSTOM,
    latency_tolerance_ms=1000,
    offline_share=0.0,
    privacy_risk=PrivacyRisk.LOW,
    model_changes_per_year=4,
)

AXES = {
    "workflow": list(Workflow),
    "latency_tolerance_ms": [50, 300, 2000],
    "offline_share": [0.0, 0.3],
    "privacy_risk": list(PrivacyRisk),
    "phi_involved": [False, True],
    "model_changes_per_year": [2, 12],
    "sites": [1, 7],
    "existing_hardware": [
        (),
        (ExistingHardware.JETSON_CLASS,),
        (ExistingHardware.PHONES_TABLETS,),
        (ExistingHardware.WINDOWS_NPU_FLEET, ExistingHardware.PHONES_TABLETS),
    ],
    # payload, rate, longest outage, devices per site, model complexity
    "shape": [
        (0.0, 0.0, 0.0, 1, ModelComplexity.MEDIUM),
        (1.5, 2.0, 0.5, 12, ModelComplexity.LARGE),
    ],
}


@pytest.fixture(scope="module")
def results() -> list[WizardResult]:
    """Every combination of the axes that the rules accept (about 4,600 wizard results)."""
    results = []
    names = list(AXES)
    for values in itertools.product(*(AXES[name] for name in names)):
        changes = dict(zip(names, values, strict=True))
        payload, rate, outage, devices, complexity = changes.pop("shape")
        answers = replace(
            BASE,
            payload_kb=payload,
            inferences_per_device_per_minute=rate,
            longest_outage_hours=outage,
            devices_per_site=devices,
            model_complexity=complexity,
            **changes,
        )
        try:
            results.append(decide(answers=answers))
        except PlanningInputError:
            continue
    return results


def test_the_grid_reaches_every_placement_and_every_task(results):
    placements = {result.placement for result in results}
    old = [task for result in results for task in reference_tasks(result)]
    assert len(results) > 4000
    assert len(placements) == 4
    assert any(task.title.startswith("Optional:") for task in old)
    # every add(...) of the old function (32 ids) and both texts of each conditional detail
    assert len({task.id for task in old}) == 32
    assert len({task.detail for task in old if task.id == "select_runtime"}) == 2
    assert len({task.detail for task in old if task.id == "test_offline"}) == 3
    assert len({task.detail for task in old if task.id == "operator_feedback_loop"}) == 2


def test_the_table_generates_the_same_tasks_as_the_old_code_for_every_input(results):
    differ = []
    for result in results:
        new = generate_plan(result=result).tasks
        if new != tuple(reference_tasks(result)):
            differ.append(result.answers)
    assert not differ, f"{len(differ)} of {len(results)} inputs differ, e.g. {differ[0]}"


def test_every_phase_has_tasks_in_every_plan(results):
    for result in results[::97]:
        plan = generate_plan(result=result)
        assert all(plan.tasks_in(phase) for phase in PHASE_KEYS)
