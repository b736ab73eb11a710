"""Model registry API serializers."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from onnxcheck.inputs import InputsRejected, parse_shape_buckets

from ..models import MlModel, ModelSignature, ModelVersion, SigningKey, ValidationRun


class MlModelSerializer(serializers.ModelSerializer):
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.CharField(read_only=True, allow_null=True)
    latest_status = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = MlModel
        fields = [
            "id",
            "name",
            "task",
            "workflow",
            "description",
            "latency_budget_ms",
            "max_int8_drop_points",
            "max_ece",
            "min_accuracy",
            "min_variant_top1_agreement",
            "min_variant_sqnr_db",
            "release_counter",
            "version_count",
            "latest_version",
            "latest_status",
            "created_at",
        ]
        read_only_fields = ["id", "release_counter", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


class RunSummarySerializer(serializers.ModelSerializer):
    target = serializers.CharField(source="target.name")
    target_id = serializers.IntegerField()
    version_id = serializers.IntegerField()

    class Meta:
        model = ValidationRun
        fields = [
            "id",
            "version_id",
            "target",
            "target_id",
            "number",
            "status",
            "synthetic_inputs",
            "reasons",
            "error",
            "attempts",
            "report_digest",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunSerializer(RunSummarySerializer):
    reviewed_by = serializers.CharField(
        source="reviewed_by.username", default=None, allow_null=True
    )

    class Meta(RunSummarySerializer.Meta):
        fields = [
            *RunSummarySerializer.Meta.fields,
            "shape_buckets",
            "gates",
            "steps",
            "report",
            "review_reason",
            "reviewed_by",
            "reviewed_at",
        ]


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    reason = serializers.CharField(max_length=1000)


class SignatureSerializer(serializers.ModelSerializer):
    key_id = serializers.CharField(source="key.key_id")
    key_status = serializers.CharField(source="key.status")

    class Meta:
        model = ModelSignature
        fields = [
            "id",
            "release_counter",
            "key_id",
            "key_status",
            "manifest",
            "accuracy_waiver",
            "four_eyes_relaxed",
            "expires_at",
            "created_at",
        ]


class VersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    model_id = serializers.IntegerField()
    derived_from = serializers.CharField(
        source="derived_from.version", default=None, allow_null=True
    )
    has_inputs = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "model_id",
            "version",
            "status",
            "file_name",
            "artifact_kind",
            "entrypoint",
            "files",
            "sha256",
            "size_bytes",
            "io_contract",
            "release_notes",
            "derived_from",
            "variant_kind",
            "variant_calibration",
            "registration_override",
            "has_inputs",
            "shape_buckets",
            "metadata",
            "created_at",
        ]

    def get_has_inputs(self, obj) -> bool:
        return bool(obj.inputs_file)


class VersionDetailSerializer(VersionSerializer):
    runs = RunSummarySerializer(source="validation_runs", many=True)
    signatures = SignatureSerializer(many=True)

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "runs", "signatures"]


SHAPE_BUCKETS_HELP = (
    'Sizes for dynamic axes: {"x[2]": [224]} by input and axis, or {"batch": [1, 8]} by a '
    "meaningful axis name (lists are zipped into buckets); or explicit buckets "
    '[{"x": [1, 3, 224, 224]}]. Unnamed axes (empty, "?", -1, 0) are each independent. A '
    "request that leaves axes open is refused (422) with every open axis and a suggested size "
    "in error.details."
)


class UploadSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=40)
    artifact = serializers.FileField(allow_empty_file=True)  # the inspector names the problem
    inputs_file = serializers.FileField(required=False, allow_null=True)
    shape_buckets = serializers.JSONField(
        required=False, allow_null=True, help_text=SHAPE_BUCKETS_HELP
    )
    release_notes = serializers.CharField(required=False, allow_blank=True, default="")
    io_contract = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="What the outputs mean: {labels: [...in output order], score_output, scores: "
        "probabilities|logits, preprocessing: {layout, scale, mean, std, color_order}, "
        "intended_use}. The label count must equal the score output's class dimension.",
    )

    def validate_shape_buckets(self, value):
        return _shape_buckets(value)


def _shape_buckets(value):
    """The form of a spec (the model-dependent checks are the service's); a JSON string is
    refused, not decoded a second time. Multipart fields are decoded once, as JSON, by DRF."""
    try:
        return parse_shape_buckets(value, max_axis_size=settings.VALIDATION_MAX_AXIS_SIZE)
    except InputsRejected as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from exc


class ValidateSerializer(serializers.Serializer):
    target = serializers.IntegerField(help_text="hardware target id")
    shape_buckets = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text=SHAPE_BUCKETS_HELP
    )
    use_uploaded_inputs = serializers.BooleanField(default=True)

    def validate_shape_buckets(self, value):
        return _shape_buckets(value)


class VariantSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["int8", "fp16"])
    version = serializers.CharField(max_length=40)
    override_reason = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to register a variant the run marked not registrable (audited).",
    )


class SignSerializer(serializers.Serializer):
    valid_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    accuracy_waiver = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when no covered target measured accuracy on labelled inputs.",
    )


class SigningKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = SigningKey
        fields = ["id", "key_id", "public_pem", "status", "created_at", "retired_at"]


# --- models ---------------------------------------------------------------------------------------


class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    algorithm = serializers.CharField()
    public_key_pem = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.CharField()
    retired_at = serializers.CharField(allow_null=True)
