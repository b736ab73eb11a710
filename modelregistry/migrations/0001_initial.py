# The model registry left fleet/ (issue 8). Its tables were created by fleet 0002 and are
# kept: this migration only tells Django's state that the registry owns them now, under their
# old names; 0002 renames the tables once fleet's state has let go of them.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('fleet', '0003_device_revoked_status'),
        ('opshero', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='MlModel',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120)),
                        ('task', models.CharField(choices=[('classification', 'Classification'), ('detection', 'Detection'), ('segmentation', 'Segmentation'), ('regression', 'Regression'), ('other', 'Other')], default='classification', max_length=16)),
                        ('workflow', models.CharField(blank=True, max_length=200)),
                        ('description', models.TextField(blank=True)),
                        ('latency_budget_ms', models.FloatField(blank=True, default=200.0, null=True)),
                        ('max_int8_drop_points', models.FloatField(blank=True, default=1.0, null=True)),
                        ('max_ece', models.FloatField(blank=True, default=0.05, null=True)),
                        ('min_accuracy', models.FloatField(blank=True, null=True)),
                        ('release_counter', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='models', to='opshero.organization')),
                        ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'fleet_model',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ModelVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('version', models.CharField(max_length=40)),
                        ('artifact', models.FileField(max_length=300, upload_to='artifacts/')),
                        ('file_name', models.CharField(max_length=200)),
                        ('sha256', models.CharField(max_length=64)),
                        ('size_bytes', models.BigIntegerField()),
                        ('release_notes', models.TextField(blank=True)),
                        ('variant_kind', models.CharField(blank=True, max_length=16)),
                        ('status', models.CharField(choices=[('uploaded', 'Uploaded'), ('validating', 'Validating'), ('validated', 'Validated'), ('rejected', 'Rejected'), ('signed', 'Signed'), ('retired', 'Retired')], default='uploaded', max_length=16)),
                        ('metadata', models.JSONField(default=dict)),
                        ('inputs_file', models.FileField(blank=True, max_length=300, upload_to='inputs/')),
                        ('inputs_sha256', models.CharField(blank=True, max_length=64)),
                        ('shape_buckets', models.JSONField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('derived_from', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='derivatives', to='modelregistry.modelversion')),
                        ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='modelregistry.mlmodel')),
                        ('uploaded_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'fleet_modelversion',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='SigningKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key_id', models.CharField(max_length=64, unique=True)),
                        ('public_pem', models.TextField()),
                        ('private_key_encrypted', models.BinaryField()),
                        ('status', models.CharField(choices=[('active', 'Active'), ('retired', 'Retired')], default='active', max_length=8)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('retired_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signing_keys', to='opshero.organization')),
                    ],
                    options={
                        'db_table': 'fleet_signingkey',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='ModelSignature',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('release_counter', models.PositiveIntegerField()),
                        ('manifest', models.JSONField()),
                        ('envelope', models.TextField()),
                        ('expires_at', models.DateTimeField()),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('signed_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signatures', to='modelregistry.modelversion')),
                        ('key', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='signatures', to='modelregistry.signingkey')),
                    ],
                    options={
                        'db_table': 'fleet_modelsignature',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='ValidationRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('passed', 'Passed'), ('failed', 'Failed'), ('error', 'Error')], default='queued', max_length=16)),
                        ('synthetic_inputs', models.BooleanField(default=True)),
                        ('shape_buckets', models.JSONField(blank=True, null=True)),
                        ('gates', models.JSONField(default=dict)),
                        ('steps', models.JSONField(default=list)),
                        ('report', models.JSONField(blank=True, null=True)),
                        ('report_digest', models.CharField(blank=True, max_length=64)),
                        ('reasons', models.JSONField(default=list)),
                        ('error', models.TextField(blank=True)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('requested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('target', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='fleet.hardwaretarget')),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='validation_runs', to='modelregistry.modelversion')),
                    ],
                    options={
                        'db_table': 'fleet_validationrun',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='mlmodel',
                    constraint=models.UniqueConstraint(fields=('organization', 'name'), name='model_name_unique'),
                ),
                migrations.AddConstraint(
                    model_name='modelversion',
                    constraint=models.UniqueConstraint(fields=('model', 'version'), name='model_version_unique'),
                ),
                migrations.AddConstraint(
                    model_name='signingkey',
                    constraint=models.UniqueConstraint(condition=models.Q(('status', 'active')), fields=('organization',), name='one_active_signing_key_per_org'),
                ),
                migrations.AddIndex(
                    model_name='validationrun',
                    index=models.Index(fields=['status', 'heartbeat_at'], name='validation_run_status'),
                ),
                migrations.AddConstraint(
                    model_name='validationrun',
                    constraint=models.UniqueConstraint(fields=('version', 'target', 'number'), name='validation_run_number_unique'),
                ),
            ],
        ),
    ]
