"""One key, one device: a fingerprint appears once in ``DeviceCredential`` (0006 removed any
duplicates)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0006_dedupe_credential_fingerprints"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="devicecredential",
            constraint=models.UniqueConstraint(
                fields=["fingerprint"], name="credential_fingerprint_unique"
            ),
        ),
    ]
