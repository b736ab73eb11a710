"""Serializers of the organisation-scoped fleet API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Device, DeviceGroup, EnrollmentToken, HardwareTarget, Placement, Site


class MaintenanceWindowSerializer(serializers.Serializer):
    day = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday")
    start = serializers.CharField(help_text="HH:MM in the site's time zone")
    end = serializers.CharField(help_text="HH:MM, after start")


class SiteSerializer(serializers.ModelSerializer):
    maintenance_windows = MaintenanceWindowSerializer(many=True, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    device_count = serializers.IntegerField(read_only=True)
    online_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "name",
            "kind",
            "region",
            "time_zone",
            "expected_connectivity",
            "maintenance_windows",
            "tags",
            "notes",
            "device_count",
            "online_count",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


class OperatorSerializer(serializers.Serializer):
    domain = serializers.CharField(allow_blank=True, required=False, default="")
    op_type = serializers.CharField()
    min_opset = serializers.IntegerField(allow_null=True, required=False, default=None)
    max_opset = serializers.IntegerField(allow_null=True, required=False, default=None)
    note = serializers.CharField(allow_blank=True, required=False, default="")


class HardwareTargetSerializer(serializers.ModelSerializer):
    builtin = serializers.BooleanField(source="is_builtin", read_only=True)
    operator_count = serializers.SerializerMethodField()
    cloned_from = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = HardwareTarget
        fields = [
            "id",
            "name",
            "builtin",
            "runtime",
            "execution_provider",
            "static_shapes_only",
            "quantized_only",
            "documentary",
            "max_model_bytes",
            "memory_budget_bytes",
            "typical_power_watts",
            "operator_count",
            "source",
            "notes",
            "cloned_from",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"validators": []}}

    def get_operator_count(self, obj) -> int:
        return len(obj.operators)


class HardwareTargetDetailSerializer(HardwareTargetSerializer):
    operators = OperatorSerializer(many=True, required=False)

    class Meta(HardwareTargetSerializer.Meta):
        fields = [*HardwareTargetSerializer.Meta.fields, "operators"]


class CloneTargetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class DeviceSerializer(serializers.ModelSerializer):
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.none())
    site_name = serializers.CharField(source="site.name", read_only=True)
    hardware_target = serializers.PrimaryKeyRelatedField(
        queryset=HardwareTarget.objects.none(), allow_null=True, required=False
    )
    hardware_target_name = serializers.CharField(
        source="hardware_target.name", read_only=True, default=None, allow_null=True
    )
    connectivity = serializers.CharField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    device_id = serializers.UUIDField(source="uid", read_only=True)

    class Meta:
        model = Device
        fields = [
            "id",
            "device_id",
            "name",
            "serial",
            "site",
            "site_name",
            "placement",
            "hardware_target",
            "hardware_target_name",
            "status",
            "connectivity",
            "agent_version",
            "runtime_version",
            "reported_model_version",
            "last_seen_at",
            "tags",
            "notes",
            "enrolled_at",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "reported_model_version",
            "last_seen_at",
            "enrolled_at",
            "created_at",
        ]
        extra_kwargs = {"serial": {"validators": []}, "placement": {"default": Placement.NEAR_EDGE}}

    def __init__(self, *args, org=None, targets=None, **kwargs):
        super().__init__(*args, **kwargs)
        if org is not None:
            self.fields["site"].queryset = Site.objects.filter(organization=org)
        if targets is not None:
            self.fields["hardware_target"].queryset = targets


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class GroupRulesSerializer(serializers.Serializer):
    site_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    site_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=Site.Kind.choices), required=False
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    placements = serializers.ListField(
        child=serializers.ChoiceField(choices=Placement.choices), required=False
    )
    target_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class DeviceGroupSerializer(serializers.ModelSerializer):
    rules = GroupRulesSerializer(required=False)
    static_members = serializers.ListField(
        child=serializers.IntegerField(), required=False, source="static_member_ids"
    )
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = DeviceGroup
        fields = [
            "id",
            "name",
            "description",
            "rules",
            "static_members",
            "member_count",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


class EnrollmentTokenSerializer(serializers.ModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True)
    state = serializers.CharField(read_only=True)
    used_by = serializers.CharField(
        source="used_by.name", read_only=True, default=None, allow_null=True
    )
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = EnrollmentToken
        fields = [
            "id",
            "prefix",
            "site",
            "site_name",
            "placement",
            "hardware_target",
            "device",
            "note",
            "state",
            "created_by",
            "created_at",
            "expires_at",
            "used_at",
            "used_by",
        ]


class EnrollmentTokenCreateSerializer(serializers.Serializer):
    site = serializers.IntegerField()
    placement = serializers.ChoiceField(choices=Placement.choices, default=Placement.NEAR_EDGE)
    hardware_target = serializers.IntegerField(required=False, allow_null=True, default=None)
    device = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="re-enroll this device"
    )
    expires_in_hours = serializers.FloatField(min_value=0.1, max_value=720, default=24)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EnrollmentTokenCreatedSerializer(EnrollmentTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="shown once, never stored")
    command = serializers.CharField(read_only=True)

    class Meta(EnrollmentTokenSerializer.Meta):
        fields = [*EnrollmentTokenSerializer.Meta.fields, "token", "command"]


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    serials = serializers.ListField(child=serializers.CharField())


# --- the device API: a gateway about itself -------------------------------------------------------


class EnrollRequestSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    public_key = serializers.CharField(max_length=400, help_text="Ed25519, base64 of 32 bytes")
    serial = serializers.CharField(max_length=120)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    agent_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default=""
    )
    runtime_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default=""
    )
    hardware = serializers.DictField(required=False, default=dict)


class DeviceSelfSerializer(serializers.Serializer):
    device_id = serializers.UUIDField(source="uid")
    name = serializers.CharField()
    serial = serializers.CharField()
    organization = serializers.CharField(source="organization.slug")
    site = serializers.CharField(source="site.name")
    site_time_zone = serializers.CharField(source="site.time_zone")
    placement = serializers.CharField()
    hardware_target = serializers.CharField(
        source="hardware_target.name", default=None, allow_null=True
    )
    status = serializers.CharField()
    agent_version = serializers.CharField()
    runtime_version = serializers.CharField()
    reported_model_version = serializers.CharField()


class EnrollResponseSerializer(DeviceSelfSerializer):
    signing_keys = serializers.ListField(child=serializers.DictField())


class StatusRequestSerializer(serializers.Serializer):
    """Every field is optional; null or absent means "not reported" and changes nothing."""

    agent_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, allow_null=True
    )
    runtime_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, allow_null=True
    )
    model_version = serializers.CharField(
        max_length=120, required=False, allow_blank=True, allow_null=True
    )
    hardware = serializers.DictField(required=False, allow_null=True)


class RotateKeyRequestSerializer(serializers.Serializer):
    # Not trimmed: the proof signs the key text exactly as sent (a PEM ends with a newline).
    new_public_key = serializers.CharField(max_length=400, trim_whitespace=False)
    proof = serializers.CharField(max_length=200, help_text="base64 signature by the new key")


class _JsonOnlyBooleanField(serializers.BooleanField):
    # A form-encoded body without the key leaves the setting as it is, like JSON does.
    default_empty_html = serializers.empty


class OperatingPolicyInputSerializer(serializers.Serializer):
    """PUT body: the settings to change; those left out keep their value. Ranges are the
    service's to check (422 naming each field); a wrong type or an unknown name is a 400."""

    review_threshold = serializers.FloatField(
        required=False, help_text="Confidence below which a case goes to a human, 0..1."
    )
    evidence_sampling_rate = serializers.FloatField(
        required=False, help_text="Share of low-confidence cases sent as evidence, 0..1."
    )
    evidence_audit_rate = serializers.FloatField(
        required=False, help_text="Share of all cases sent as audit evidence, 0..1."
    )
    evidence_daily_cap = serializers.IntegerField(
        required=False, help_text="Evidence samples per device and day, >= 0."
    )
    image_evidence = _JsonOnlyBooleanField(
        required=False, help_text="Whether images may leave the site as evidence."
    )
    telemetry_interval_s = serializers.IntegerField(
        required=False, help_text="Seconds between telemetry batches, 10..3600."
    )
    desired_poll_interval_s = serializers.IntegerField(
        required=False, help_text="Seconds between desired-state polls, 15..3600."
    )

    def validate(self, attrs):
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown policy setting."] for name in unknown}
            )
        return attrs


class PolicyValuesSerializer(serializers.Serializer):
    review_threshold = serializers.FloatField()
    evidence_sampling_rate = serializers.FloatField()
    evidence_audit_rate = serializers.FloatField()
    evidence_daily_cap = serializers.IntegerField()
    image_evidence = serializers.BooleanField()
    telemetry_interval_s = serializers.IntegerField()
    desired_poll_interval_s = serializers.IntegerField()


class PolicyRevisionSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    values = serializers.SerializerMethodField(help_text="Null when an override was removed")
    cleared = serializers.BooleanField()
    changed_by = serializers.CharField(source="changed_by_label")
    changed_at = serializers.DateTimeField()

    @extend_schema_field(PolicyValuesSerializer(allow_null=True))
    def get_values(self, obj) -> dict | None:
        return obj.values or None


class OperatingPolicySerializer(serializers.Serializer):
    """A site's effective policy or a group's override, with the last revisions."""

    scope = serializers.ChoiceField(choices=["site", "group"])
    site = serializers.IntegerField(allow_null=True)
    group = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(
        choices=["default", "site", "group", "none"],
        help_text="default: the site kind's defaults; none: a group without an override",
    )
    source_label = serializers.CharField()
    revision = serializers.IntegerField(help_text="0 for defaults or no override")
    values = PolicyValuesSerializer(allow_null=True, help_text="Null: a group without override")
    etag_part = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)
    revisions = PolicyRevisionSerializer(many=True)
