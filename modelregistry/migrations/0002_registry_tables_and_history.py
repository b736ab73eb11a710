# Second half of the move out of fleet/ (issue 8): the tables take the registry's names, and
# the history follows them: audit events' target types, content types and permissions are
# rewritten so one object keeps one history. Reversible; a no-op on an empty database.

from django.db import migrations

# old (app_label, model) -> new (app_label, model)
MOVED = {
    ('fleet', 'model'): ('modelregistry', 'mlmodel'),
    ('fleet', 'modelversion'): ('modelregistry', 'modelversion'),
    ('fleet', 'validationrun'): ('modelregistry', 'validationrun'),
    ('fleet', 'signingkey'): ('modelregistry', 'signingkey'),
    ('fleet', 'modelsignature'): ('modelregistry', 'modelsignature'),
}


def _rewrite(apps, mapping):
    AuditEvent = apps.get_model('opshero', 'AuditEvent')
    ContentType = apps.get_model('contenttypes', 'ContentType')
    Permission = apps.get_model('auth', 'Permission')
    for (old_app, old_model), (new_app, new_model) in mapping.items():
        AuditEvent.objects.filter(target_type=f'{old_app}.{old_model}').update(
            target_type=f'{new_app}.{new_model}'
        )
        content_type = ContentType.objects.filter(app_label=old_app, model=old_model).first()
        if content_type is None:
            continue
        if ContentType.objects.filter(app_label=new_app, model=new_model).exists():
            continue  # post_migrate already made the new one; the old one is left stale
        content_type.app_label, content_type.model = new_app, new_model
        content_type.save(update_fields=['app_label', 'model'])
        if old_model != new_model:
            for permission in Permission.objects.filter(content_type=content_type):
                action = permission.codename.rsplit('_', 1)[0]
                permission.codename = f'{action}_{new_model}'
                permission.save(update_fields=['codename'])


def forwards(apps, schema_editor):
    _rewrite(apps, MOVED)


def backwards(apps, schema_editor):
    _rewrite(apps, {new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):

    dependencies = [
        ('modelregistry', '0001_initial'),
        ('fleet', '0004_model_registry_moved_out'),
        ('opshero', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.AlterModelTable(name='mlmodel', table=None),
        migrations.AlterModelTable(name='modelversion', table=None),
        migrations.AlterModelTable(name='validationrun', table=None),
        migrations.AlterModelTable(name='signingkey', table=None),
        migrations.AlterModelTable(name='modelsignature', table=None),
        migrations.RunPython(forwards, backwards),
    ]
