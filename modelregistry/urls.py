"""Model registry pages, mounted under /o/<org>/ with the namespace "modelregistry"."""

from django.urls import path

from . import views

app_name = "modelregistry"

urlpatterns = [
    path("models/", views.model_list, name="models"),
    path("models/<int:model_id>/", views.model_detail, name="model"),
    path("models/<int:model_id>/upload/", views.version_upload, name="version-upload"),
    path(
        "models/<int:model_id>/upload/shapes/",
        views.upload_shape_editor,
        name="upload-shape-editor",
    ),
    path("models/versions/<int:version_id>/", views.version_detail, name="version"),
    path(
        "models/versions/<int:version_id>/validate/",
        views.version_validate,
        name="version-validate",
    ),
    path("models/versions/<int:version_id>/sign/", views.version_sign, name="version-sign"),
    path(
        "models/versions/<int:version_id>/retire/",
        views.version_retire,
        name="version-retire",
    ),
    path(
        "models/versions/<int:version_id>/artifact/",
        views.version_artifact,
        name="version-artifact",
    ),
    path(
        "models/versions/<int:version_id>/envelope/",
        views.version_envelope,
        name="version-envelope",
    ),
    path("models/compare/", views.version_compare, name="version-compare"),
    path("models/runs/<int:run_id>/progress/", views.run_progress, name="run-progress"),
    path("models/runs/<int:run_id>/review/", views.run_review, name="run-review"),
    path(
        "models/runs/<int:run_id>/variants/<str:kind>/register/",
        views.variant_register,
        name="variant-register",
    ),
    path("models/signing-keys/", views.signing_keys, name="signing-keys"),
    path(
        "models/signing-keys/<int:key_pk>/public.pem",
        views.signing_key_pem,
        name="signing-key-pem",
    ),
]
