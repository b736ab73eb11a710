"""Fleet list filters: the device list's query string, for the page, the CSV and the API."""

from __future__ import annotations

from typing import ClassVar

import django_filters
from django.db.models import Q, QuerySet

from opshero.filters import IdFilter, ListFilterSet

from .models import Device, Placement, Site
from .selectors import Connectivity, tag_filter

DEVICE_ORDERINGS = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "site": ("site__name", "name", "pk"),
    "-site": ("-site__name", "name", "pk"),
    "last_seen": ("last_seen_at", "pk"),
    "-last_seen": ("-last_seen_at", "-pk"),
    "status": ("connectivity", "name", "pk"),
    "-status": ("-connectivity", "name", "pk"),
    "serial": ("serial", "pk"),
    "-serial": ("-serial", "-pk"),
}


class DeviceFilterSet(ListFilterSet):
    """Filters of the fleet list. ``status`` is the connectivity shown, not the lifecycle
    status, so the queryset must come from ``selectors.devices_for_org``."""

    q = django_filters.CharFilter(
        method="search", max_length=100, help_text="Name or serial contains"
    )
    site = IdFilter(field_name="site_id", help_text="Site id")
    site_kind = django_filters.ChoiceFilter(
        field_name="site__kind", choices=Site.Kind.choices, empty_label="Any kind"
    )
    status = django_filters.ChoiceFilter(
        field_name="connectivity", choices=Connectivity.CHOICES, empty_label="Any status"
    )
    placement = django_filters.ChoiceFilter(choices=Placement.choices, empty_label="Any placement")
    target = IdFilter(field_name="hardware_target_id", help_text="Hardware target id")
    tag = django_filters.CharFilter(method="with_tag", max_length=40)
    ordering = django_filters.ChoiceFilter(
        choices=[(key, key) for key in DEVICE_ORDERINGS], method="order", empty_label=None
    )

    defaults: ClassVar[dict] = {"ordering": "name"}

    class Meta:
        model = Device
        fields = ()  # every filter is declared above

    def search(self, queryset: QuerySet[Device], name: str, value: str):
        return queryset.filter(Q(name__icontains=value) | Q(serial__icontains=value))

    def with_tag(self, queryset: QuerySet[Device], name: str, value: str):
        return queryset.filter(tag_filter([value]))

    def order(self, queryset: QuerySet[Device], name: str, value: str):
        return queryset.order_by(*DEVICE_ORDERINGS[value])
