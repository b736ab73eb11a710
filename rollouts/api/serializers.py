"""Bodies of the rollouts device API (docs/device-api.md, "Desired state, artifacts and
deployment status"): the status report a device sends, and the answers' shapes for OpenAPI."""

from __future__ import annotations

from rest_framework import serializers

# Longer text is refused (422 naming the field) rather than cut: a device that sends more
# than the server keeps should learn it.
TEXT_LIMITS = {"status": 20, "reason_code": 40, "reason": 500}


class ActionStatusRequestSerializer(serializers.Serializer):
    """A deployment action's progress. ``status`` is checked by the service (an unknown one is
    ``422 invalid_status``), after it has established the action is the device's own."""

    status = serializers.CharField(
        trim_whitespace=False,
        help_text="downloading | verifying | installed | healthy | failed | rolled_back",
    )
    reason_code = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    inferences_served = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=2**31 - 1
    )

    def oversized(self) -> dict[str, list[str]]:
        """The validated text fields longer than the server keeps, with their limits."""
        return {
            name: [f"At most {limit} characters (got {len(self.validated_data[name])})."]
            for name, limit in TEXT_LIMITS.items()
            if len(self.validated_data[name]) > limit
        }


class ActionStatusResponseSerializer(serializers.Serializer):
    action = serializers.IntegerField()
    status = serializers.CharField()
    changed = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)


class FallbackSerializer(serializers.Serializer):
    version = serializers.CharField()
    sha256 = serializers.CharField()
    artifact_url = serializers.CharField()


class DesiredModelSerializer(serializers.Serializer):
    model = serializers.CharField()
    model_id = serializers.IntegerField()
    version = serializers.CharField()
    version_id = serializers.IntegerField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    artifact_kind = serializers.CharField()
    entrypoint = serializers.CharField(allow_blank=True)
    release_counter = serializers.IntegerField(allow_null=True)
    envelope = serializers.CharField(allow_null=True)
    refused = serializers.CharField(required=False)
    artifact_url = serializers.CharField()
    purpose = serializers.ChoiceField(choices=["install", "rollback"])
    action_id = serializers.IntegerField(allow_null=True)
    since = serializers.DateTimeField()
    fallback = FallbackSerializer(allow_null=True)


class TrustedKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    public_pem = serializers.CharField()


class DesiredStateSerializer(serializers.Serializer):
    device = serializers.UUIDField()
    models = DesiredModelSerializer(many=True)
    trusted_keys = TrustedKeySerializer(many=True)
    revoked_key_ids = serializers.ListField(child=serializers.CharField())
    policy = serializers.DictField()
