"""A small fleet with two signed versions of one model, for the rollout tests.

``RolloutWorld`` holds an organisation (acme of the ``world`` fixture), its approvers (the
planner of a rollout and a second approver), a signing key, a model with a baseline version
already assigned to every device and a candidate version, both validated on the built-in CPU
target and signed, and sites with active devices on that target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.utils import timezone
from onnx import TensorProto, helper

from fleet.models import Device, HardwareTarget, Site
from modelregistry import assignment_services, services, signing_services
from modelregistry.models import MlModel, ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.roles import Role
from tests import onnx_models
from tests.factories import make_device, make_member, make_site

RUNTIME = "onnxruntime 1.20.1"


def tiny_version(model: MlModel, actor: Actor, version: str, bias: float) -> ModelVersion:
    """A distinct tiny ONNX artifact per version (the bias makes the digest differ)."""
    initializer = helper.make_tensor("B", TensorProto.FLOAT, [4], [bias, -0.5, 1.0, -1.0])
    data = onnx_models.tiny_model(initializer=initializer).SerializeToString()
    return services.upload_version(
        model=model,
        actor=actor,
        artifact=ContentFile(data, name=f"tiny-{version}.onnx"),
        version=version,
    )


def validate_and_sign(version: ModelVersion, target: HardwareTarget, signer: Actor, digest: str):
    ValidationRun.objects.create(
        version=version,
        target=target,
        number=version.validation_runs.count() + 1,
        status=ValidationRun.Status.PASSED,
        report={"passed": True, "steps": []},
        report_digest=digest,
        finished_at=timezone.now(),
    )
    version.status = ModelVersion.Status.VALIDATING
    version.save()
    services._finish_version_status(version)
    version.refresh_from_db()
    signing_services.sign_version(
        version=version, actor=signer, role=Role.APPROVER, accuracy_waiver="tests: no labels"
    )
    version.refresh_from_db()
    return version


@dataclass
class RolloutWorld:
    org: object
    planner: Actor
    approver: Actor
    admin: Actor
    model: MlModel
    baseline: ModelVersion
    candidate: ModelVersion
    target: HardwareTarget
    sites: list[Site] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    def devices_at(self, site: Site) -> list[Device]:
        return [device for device in self.devices if device.site_id == site.pk]


def build(world, *, sites: int = 3, per_site: int = 4, windows=None) -> RolloutWorld:
    org = world.a.org
    planner = Actor.for_user(world.a.user(Role.APPROVER))
    approver = Actor.for_user(make_member(org, Role.APPROVER).user)
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    signing_services.create_signing_key(organization=org, actor=admin)
    target = HardwareTarget.objects.get(builtin_key="cpu")
    model = services.create_model(organization=org, actor=planner, name="dock damage")
    uploader = Actor.for_user(make_member(org, Role.APPROVER).user)
    baseline = validate_and_sign(
        tiny_version(model, uploader, "1.0.0", 0.5), target, planner, "a" * 64
    )
    candidate = validate_and_sign(
        tiny_version(model, uploader, "1.1.0", 0.25), target, planner, "b" * 64
    )
    made = RolloutWorld(
        org=org,
        planner=planner,
        approver=approver,
        admin=admin,
        model=model,
        baseline=baseline,
        candidate=candidate,
        target=target,
    )
    for number in range(sites):
        site = make_site(org, name=f"Dock {number + 1}", maintenance_windows=windows or [])
        made.sites.append(site)
        for _ in range(per_site):
            made.devices.append(
                make_device(
                    org,
                    site=site,
                    status=Device.Status.ACTIVE,
                    hardware_target=target,
                    runtime_version=RUNTIME,
                )
            )
    assignment_services.assign_version(
        organization=org,
        model=model,
        version=baseline,
        device_ids=[device.pk for device in made.devices],
        actor=Actor.system("tests"),
    )
    return made
