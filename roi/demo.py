"""Demo planning data for the demo organisation: a dock-vision assessment, a scorecard of three
candidate stacks, a logistics ROI scenario and the 90-day plan, all created through the
services (so audited) and idempotent: existing demo objects are left as they are."""

from __future__ import annotations

from django.db import transaction

from . import services
from .engine import preset
from .models import Assessment, Plan, RoiScenario, Scorecard
from .rules import Workflow

ASSESSMENT_NAME = "Dock damage and label checks"
SCORECARD_NAME = "Dock vision stacks"
SCENARIO_NAME = "Dock vision: three-site pilot"
PLAN_NAME = "Dock vision: 90-day pilot"

ANSWERS = {
    "workflow": Workflow.LOGISTICS_DOCK_VISION.value,
    "latency_tolerance_ms": 150,
    "offline_share": 0.02,
    "longest_outage_hours": 4,
    "privacy_risk": "medium",
    "phi_involved": False,
    "model_changes_per_year": 4,
    "devices_per_site": 6,
    "sites": 3,
    "payload_kb": 400,
    "inferences_per_device_per_minute": 2,
    "model_complexity": "medium",
    "existing_hardware": ["phones_tablets", "jetson_class"],
}


def _scores(values: dict[str, tuple[int, str]]) -> dict[str, dict]:
    return {key: {"score": score, "evidence": note} for key, (score, note) in values.items()}


CANDIDATES = [
    {
        "name": "Jetson Orin gateway",
        "hardware": "Jetson Orin Nano 8 GB per dock bank",
        "runtime": "TensorRT via ONNX Runtime",
        "toolchain": "ONNX export + trtexec INT8 calibration",
        "scores": _scores(
            {
                "model_compatibility": (4, "All detector ops convert; one custom NMS replaced."),
                "performance": (5, "P95 38 ms at 1280x720 in the conversion spike."),
                "quantization": (4, "INT8 drop 0.8 points on 2,000 dock images."),
                "power_thermal": (4, "25 W mode holds clocks after 20 min in the cabinet."),
                "offline": (5, "Runs and buffers events with the WAN down."),
                "update_strategy": (4, "Signed model files, staged by site, rollback tested."),
                "observability": (4, "Latency, confidence and model version per event."),
                "security": (4, "Device key in TPM, signed models, disk encryption."),
            }
        ),
    },
    {
        "name": "Handheld NPU only",
        "hardware": "Android rugged scanners (mobile NPU)",
        "runtime": "LiteRT with NNAPI delegate",
        "toolchain": "ONNX -> TFLite conversion",
        "scores": _scores(
            {
                "model_compatibility": (3, "Two ops fall back to CPU after conversion."),
                "performance": (3, "P95 180 ms on 640x640; fine for labels, slow for damage."),
                "quantization": (3, "INT8 drop 1.9 points."),
                "power_thermal": (3, "Throttles 15 % after 20 min of continuous scanning."),
                "offline": (5, "Fully offline on the device."),
                "update_strategy": (2, "Model ships inside the app: a store release per change."),
                "observability": (2, "No per-inference telemetry from the app today."),
                "security": (4, "MDM-managed, encrypted storage."),
            }
        ),
    },
    {
        "name": "Cloud vision API",
        "hardware": "None on site",
        "runtime": "Managed cloud inference endpoint",
        "toolchain": "Vendor SDK",
        "scores": _scores(
            {
                "model_compatibility": (5, "Vendor model; no conversion."),
                "performance": (2, "P95 620 ms from the docks including the upload."),
                "quantization": (5, "Not applicable: full-precision model."),
                "power_thermal": (5, "No on-site compute."),
                "offline": (1, "Stops with the WAN."),
                "update_strategy": (5, "Vendor rolls out; versions pinned per project."),
                "observability": (4, "Request logs and confidence in the console."),
                "security": (3, "Images leave the site; DPA needed."),
            }
        ),
    },
]


@transaction.atomic
def seed(context: dict, stdout=None) -> None:
    org, actor = context["org"], context["actor"]
    assessment = Assessment.objects.filter(organization=org, name=ASSESSMENT_NAME).first()
    if assessment is None:
        assessment = services.create_assessment(
            organization=org, actor=actor, answers=ANSWERS, name=ASSESSMENT_NAME
        )
    if not Scorecard.objects.filter(organization=org, name=SCORECARD_NAME).exists():
        services.create_scorecard(
            organization=org,
            actor=actor,
            name=SCORECARD_NAME,
            candidates=CANDIDATES,
            weights={"update_strategy": 1.5, "observability": 1.5},
            assessment=assessment,
        )
    scenario = RoiScenario.objects.filter(organization=org, name=SCENARIO_NAME).first()
    if scenario is None:
        scenario = services.create_scenario(
            organization=org,
            actor=actor,
            name=SCENARIO_NAME,
            inputs=preset(workflow=Workflow.LOGISTICS_DOCK_VISION).to_dict(),
            assessment=assessment,
            workflow=Workflow.LOGISTICS_DOCK_VISION.value,
        )
    if not Plan.objects.filter(organization=org, name=PLAN_NAME).exists():
        plan = services.create_plan(
            organization=org,
            actor=actor,
            assessment=assessment,
            scenario=scenario,
            name=PLAN_NAME,
        )
        for task_id, status in (("select_runtime", "doing"), ("device_identity", "done")):
            services.set_task_status(plan=plan, actor=actor, task_id=task_id, status=status)
        # The demo registry has no real dock-damage model: the plan is linked to the candidate
        # architecture (SqueezeNet with random weights), whose figures are lab latency and
        # operator support only, never accuracy.
        from modelregistry.models import MlModel

        model = MlModel.objects.filter(organization=org, name="squeezenet-test-network").first()
        if model is not None:
            services.update_plan(plan=plan, actor=actor, model=model)
    if stdout is not None:
        stdout.write("Planning: dock-vision assessment, scorecard, ROI scenario and 90-day plan.")
