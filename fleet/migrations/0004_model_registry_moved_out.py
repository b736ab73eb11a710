# The model registry moved to the modelregistry app (issue 8): fleet's state lets go of the five
# models; their tables and rows stay and are renamed by modelregistry 0002.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0003_device_revoked_status'),
        ('modelregistry', '0001_initial'),
        ('roi', '0003_plan_model_in_registry'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='ModelSignature'),
                migrations.DeleteModel(name='ValidationRun'),
                migrations.DeleteModel(name='SigningKey'),
                migrations.DeleteModel(name='ModelVersion'),
                migrations.DeleteModel(name='Model'),
            ],
        ),
    ]
