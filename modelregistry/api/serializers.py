"""Model registry API serializers."""

from __future__ import annotations

import json

from rest_framework import serializers

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
    class Meta(RunSummarySerializer.Meta):
        fields = [*RunSummarySerializer.Meta.fields, "shape_buckets", "gates", "steps", "report"]


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
            "expires_at",
            "created_at",
        ]


class VersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    model_id = serializers.IntegerField()
    derived_from = serializers.CharField(source="derived_from.version", default=None)
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
            "sha256",
            "size_bytes",
            "release_notes",
            "derived_from",
            "variant_kind",
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


class UploadSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=40)
    artifact = serializers.FileField(allow_empty_file=True)  # the inspector names the problem
    inputs_file = serializers.FileField(required=False, allow_null=True)
    shape_buckets = serializers.JSONField(required=False, allow_null=True)
    release_notes = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_shape_buckets(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else None
            except ValueError as exc:
                raise serializers.ValidationError(f"Not JSON: {exc}.") from exc
        if value is not None and not isinstance(value, dict | list):
            raise serializers.ValidationError('An object such as {"batch": [1, 8]}.')
        return value


class ValidateSerializer(serializers.Serializer):
    target = serializers.IntegerField(help_text="hardware target id")
    shape_buckets = serializers.JSONField(required=False, allow_null=True, default=None)
    use_uploaded_inputs = serializers.BooleanField(default=True)


class VariantSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["int8", "fp16"])
    version = serializers.CharField(max_length=40)


class SignSerializer(serializers.Serializer):
    valid_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)


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
