# Shape buckets keyed by input and axis (issue 9). Unnamed axes (an empty dim_param, "?", -1, 0)
# are independent now, so a stored key such as "?" (which used to size every axis spelled "?"
# at once) is rewritten to one "input[axis]" key per axis it sized, read from the version's
# metadata: the sizes every run gets stay exactly what they were. Meaningful names ("batch"),
# "input[axis]" keys and explicit bucket lists are left alone. Backwards is a no-op: the old
# code reads "input[axis]" keys too. Safe on an empty database. The rules are frozen here on
# purpose, so later changes to onnxcheck cannot change what this migration did.

import re

from django.db import migrations

PLACEHOLDERS = {"", "?", "*", "none", "null", "unk", "unknown", "dynamic", "dyn", "n/a", "na",
                "undefined"}
NUMERIC = re.compile(r"^[+-]?\d+$")
AXIS_KEY = re.compile(r"^(?P<input>.+)\[(?P<axis>\d+)\]$")


def _is_placeholder(key):
    text = key.strip()
    return text.lower() in PLACEHOLDERS or bool(NUMERIC.match(text))


def by_axis(buckets, metadata):
    """``buckets`` with placeholder keys rewritten to ``input[axis]`` keys (same object when
    there is nothing to rewrite)."""
    if not isinstance(buckets, dict) or not buckets:
        return buckets
    inputs = (metadata or {}).get("inputs") or []
    out = {}
    changed = False
    for key, sizes in buckets.items():
        if not isinstance(key, str) or AXIS_KEY.match(key) or not _is_placeholder(key):
            out[key] = sizes
            continue
        targets = [
            f"{item['name']}[{axis}]"
            for item in inputs
            for axis, dim in enumerate(item.get("shape") or [])
            if dim == key
        ]
        if not targets:  # sized nothing before either: keep it, the request path reports it
            out[key] = sizes
            continue
        for target in targets:
            out[target] = sizes  # later keys won before too
        changed = True
    return out if changed else buckets


def forwards(apps, schema_editor):
    ModelVersion = apps.get_model('modelregistry', 'ModelVersion')
    ValidationRun = apps.get_model('modelregistry', 'ValidationRun')
    for version in ModelVersion.objects.exclude(shape_buckets=None).iterator():
        rewritten = by_axis(version.shape_buckets, version.metadata)
        if rewritten is not version.shape_buckets:
            version.shape_buckets = rewritten
            version.save(update_fields=['shape_buckets'])
    runs = ValidationRun.objects.exclude(shape_buckets=None).select_related('version')
    for run in runs.iterator():
        rewritten = by_axis(run.shape_buckets, run.version.metadata)
        if rewritten is not run.shape_buckets:
            run.shape_buckets = rewritten
            run.save(update_fields=['shape_buckets'])


class Migration(migrations.Migration):

    dependencies = [
        ('modelregistry', '0003_validationrun_needs_review'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
