# Plan.model now points at the registry's MlModel. The column and its database constraint are
# unchanged (the table is the same one, renamed by modelregistry 0002): state only.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('roi', '0002_plan_measured_model'),
        ('modelregistry', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='plan',
                    name='model',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='modelregistry.mlmodel'),
                ),
            ],
        ),
    ]
