"""One key, one device: resolve duplicate ``DeviceCredential.fingerprint`` values so that
0007 can add the unique constraint.

Before that constraint two concurrent enrollments could bind the same key to two devices (in
one or two organisations). The oldest credential of a fingerprint is kept (that device enrolled
with it first); every later row with the same fingerprint is deleted, because its device shares
a key another device holds and nobody can tell which holder is genuine. An active device left
without a live key is marked revoked, so it is refused on its next request and must re-enroll
with a token made for it (device page → Re-enroll), which binds a fresh key. The constraint is
a migration of its own so that its ALTER TABLE runs in its own transaction, after these rows
changed.
"""

from django.db import migrations
from django.db.models import Count


def dedupe_fingerprints(apps, schema_editor):
    DeviceCredential = apps.get_model("fleet", "DeviceCredential")
    Device = apps.get_model("fleet", "Device")
    duplicated = (
        DeviceCredential.objects.values("fingerprint")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("fingerprint", flat=True)
    )
    affected_devices = set()
    for fingerprint in list(duplicated):
        rows = list(
            DeviceCredential.objects.filter(fingerprint=fingerprint)
            .order_by("created_at", "id")
            .values_list("id", "device_id")
        )
        for credential_id, device_id in rows[1:]:
            DeviceCredential.objects.filter(pk=credential_id).delete()
            affected_devices.add(device_id)
    live = set(
        DeviceCredential.objects.filter(
            device_id__in=affected_devices, revoked_at__isnull=True
        ).values_list("device_id", flat=True)
    )
    # Migrations cannot call fleet.services.transition_device; active -> revoked is a
    # transition the lifecycle allows.
    Device.objects.filter(pk__in=affected_devices - live, status="active").update(status="revoked")


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0005_target_documentary"),
    ]

    operations = [
        migrations.RunPython(dedupe_fingerprints, migrations.RunPython.noop),
    ]
