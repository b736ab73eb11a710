"""Shapes of the telemetry API's answers (for the OpenAPI schema; the service builds them)."""

from rest_framework import serializers


class EventRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="position in the batch's events")
    sequence = serializers.IntegerField(allow_null=True, help_text="when the event had one")
    code = serializers.CharField()
    reason = serializers.CharField()


class LandingReceiptSerializer(serializers.Serializer):
    batch = serializers.UUIDField(allow_null=True, help_text="null when no event was held")
    epoch = serializers.CharField()
    events = serializers.IntegerField(help_text="events in the body")
    accepted = serializers.IntegerField(help_text="events landed by this request")
    held = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="inclusive [first, last] sequence ranges now durably held: drop them",
    )
    duplicates = serializers.ListField(
        child=serializers.IntegerField(), help_text="indexes repeating an event in this batch"
    )
    rejected = EventRejectionSerializer(many=True, help_text="refused for good: drop them too")
