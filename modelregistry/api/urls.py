from django.urls import path

from . import views

# Organisation-scoped model registry API, mounted under /api/v1/orgs/<org>/.
urlpatterns = [
    path("models/", views.ModelListView.as_view(), name="api-models"),
    path("models/<int:model_id>/", views.ModelDetailView.as_view(), name="api-model"),
    path(
        "models/<int:model_id>/versions/",
        views.VersionListView.as_view(),
        name="api-model-versions",
    ),
    path(
        "model-versions/<int:version_id>/",
        views.VersionDetailView.as_view(),
        name="api-model-version",
    ),
    path(
        "model-versions/<int:version_id>/validations/",
        views.VersionValidateView.as_view(),
        name="api-model-version-validate",
    ),
    path(
        "model-versions/<int:version_id>/sign/",
        views.VersionSignView.as_view(),
        name="api-model-version-sign",
    ),
    path(
        "model-versions/<int:version_id>/artifact/",
        views.VersionArtifactView.as_view(),
        name="api-model-version-artifact",
    ),
    path(
        "model-versions/<int:version_id>/envelope/",
        views.VersionEnvelopeView.as_view(),
        name="api-model-version-envelope",
    ),
    path(
        "validation-runs/<int:run_id>/",
        views.RunDetailView.as_view(),
        name="api-validation-run",
    ),
    path(
        "validation-runs/<int:run_id>/review/",
        views.RunReviewView.as_view(),
        name="api-validation-run-review",
    ),
    path(
        "validation-runs/<int:run_id>/variants/",
        views.RunVariantView.as_view(),
        name="api-validation-run-variants",
    ),
    path("signing-keys/", views.SigningKeyListView.as_view(), name="api-signing-keys"),
    path(
        "signing-keys/rotate/",
        views.SigningKeyRotateView.as_view(),
        name="api-signing-keys-rotate",
    ),
    path(
        "signing-keys/<int:key_id>/retire/",
        views.SigningKeyRetireView.as_view(),
        name="api-signing-key-retire",
    ),
]
