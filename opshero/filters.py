"""List filters: the base every app's FilterSets build on, and the audit log's.

One FilterSet per listed model serves the selector, the HTML filter form and the API (and
so the OpenAPI parameters, through drf-spectacular's django-filter support). The API answers
a bad value with 400 (``DjangoFilterBackend`` raises); a page drops it and still renders the
list, because a FilterSet filters by the values that are valid.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from .models import AuditEvent

EMPTY = (None, "", [], ())


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """An object id (``?site=3``); "abc" or "1.5" is a bad value, not a near match."""

    field_class = forms.IntegerField


class ListFilterSet(django_filters.FilterSet):
    """A list's filters, with the values in effect for the page to show."""

    #: A filter's value when its parameter is absent or bad (else the field's empty value).
    defaults: ClassVar[dict[str, Any]] = {}

    def apply(self, queryset: QuerySet) -> QuerySet:
        """``queryset`` narrowed by the valid values; bad ones are dropped (see ``errors``)."""
        if not self.is_bound:
            return queryset
        self.form.is_valid()
        return self.filter_queryset(queryset)

    def values(self) -> dict[str, Any]:
        """Every filter's value in effect: the valid ones typed, the others their default."""
        self.form.is_valid()
        cleaned = getattr(self.form, "cleaned_data", {})
        values = {}
        for name, field in self.form.fields.items():
            value = cleaned.get(name)
            if value in EMPTY:
                # to_python(None) is the field's own empty value: "" for text, None for ids.
                value = self.defaults.get(name, field.to_python(None))
            values[name] = value
        return values


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class AuditEventFilterSet(ListFilterSet):
    """Filters of the audit page and API; dates are days in the current time zone."""

    q = django_filters.CharFilter(
        method="search", max_length=100, help_text="Actor, target or verb contains"
    )
    verb = django_filters.CharFilter(max_length=64)
    actor_kind = django_filters.ChoiceFilter(
        choices=AuditEvent.ActorKind.choices, empty_label="Any"
    )
    target_type = django_filters.CharFilter(max_length=64)
    since = django_filters.DateFilter(
        method="on_or_after", input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD, inclusive"
    )
    until = django_filters.DateFilter(
        method="on_or_before", input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD, inclusive"
    )

    class Meta:
        model = AuditEvent
        fields = ()  # every filter is declared above

    def search(self, queryset: QuerySet[AuditEvent], name: str, value: str):
        return queryset.filter(
            Q(actor_label__icontains=value)
            | Q(target_label__icontains=value)
            | Q(verb__icontains=value)
            | Q(target_id=value)
        )

    def on_or_after(self, queryset: QuerySet[AuditEvent], name: str, value: date):
        return queryset.filter(at__gte=_start_of(value))

    def on_or_before(self, queryset: QuerySet[AuditEvent], name: str, value: date):
        return queryset.filter(at__lt=_start_of(value + timedelta(days=1)))
