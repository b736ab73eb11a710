"""Fleet pages, mounted under /o/<org>/ with the namespace "fleet"."""

from django.urls import path

from . import model_views, views

app_name = "fleet"

urlpatterns = [
    path("fleet/", views.device_list, name="devices"),
    path("fleet/devices/new/", views.device_new, name="device-new"),
    path("fleet/devices/<int:device_id>/", views.device_detail, name="device"),
    path("fleet/devices/<int:device_id>/revoke/", views.device_revoke, name="device-revoke"),
    path("fleet/devices/<int:device_id>/retire/", views.device_retire, name="device-retire"),
    path("fleet/import/", views.device_import, name="import"),
    path("fleet/export.csv", views.device_export, name="export"),
    path("fleet/sites/", views.site_list, name="sites"),
    path("fleet/sites/<int:site_id>/", views.site_detail, name="site"),
    path("fleet/sites/<int:site_id>/delete/", views.site_delete, name="site-delete"),
    path("fleet/enroll/", views.enroll, name="enroll"),
    path("fleet/groups/", views.group_list, name="groups"),
    path("fleet/groups/preview/", views.group_preview, name="group-preview"),
    path("fleet/groups/<int:group_id>/", views.group_detail, name="group"),
    path("fleet/groups/<int:group_id>/delete/", views.group_delete, name="group-delete"),
    path("fleet/targets/", views.target_list, name="targets"),
    path("fleet/targets/<int:target_id>/", views.target_detail, name="target"),
    path("fleet/targets/<int:target_id>/clone/", views.target_clone, name="target-clone"),
    # model registry
    path("models/", model_views.model_list, name="models"),
    path("models/<int:model_id>/", model_views.model_detail, name="model"),
    path("models/<int:model_id>/upload/", model_views.version_upload, name="version-upload"),
    path("models/versions/<int:version_id>/", model_views.version_detail, name="version"),
    path(
        "models/versions/<int:version_id>/validate/",
        model_views.version_validate,
        name="version-validate",
    ),
    path("models/versions/<int:version_id>/sign/", model_views.version_sign, name="version-sign"),
    path(
        "models/versions/<int:version_id>/retire/",
        model_views.version_retire,
        name="version-retire",
    ),
    path(
        "models/versions/<int:version_id>/artifact/",
        model_views.version_artifact,
        name="version-artifact",
    ),
    path(
        "models/versions/<int:version_id>/envelope/",
        model_views.version_envelope,
        name="version-envelope",
    ),
    path("models/compare/", model_views.version_compare, name="version-compare"),
    path("models/runs/<int:run_id>/progress/", model_views.run_progress, name="run-progress"),
    path(
        "models/runs/<int:run_id>/variants/<str:kind>/register/",
        model_views.variant_register,
        name="variant-register",
    ),
    path("models/signing-keys/", model_views.signing_keys, name="signing-keys"),
    path(
        "models/signing-keys/<int:key_pk>/public.pem",
        model_views.signing_key_pem,
        name="signing-key-pem",
    ),
]
