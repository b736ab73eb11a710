# Plan.start_date: day 1 of a plan. Existing plans start on the day they were created.

import django.utils.timezone
from django.db import migrations, models
from django.db.models.functions import TruncDate


def start_on_creation_day(apps, schema_editor):
    Plan = apps.get_model("roi", "Plan")
    Plan.objects.update(start_date=TruncDate("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("roi", "0003_plan_model_in_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="start_date",
            field=models.DateField(
                default=django.utils.timezone.localdate, help_text="Day 1 of the plan"
            ),
        ),
        migrations.RunPython(start_on_creation_day, migrations.RunPython.noop),
    ]
