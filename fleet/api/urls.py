from django.urls import path

from . import model_views, views

# Organisation-scoped user API, mounted under /api/v1/orgs/<org>/.
urlpatterns = [
    path("sites/", views.SiteListView.as_view(), name="api-sites"),
    path("sites/<int:site_id>/", views.SiteDetailView.as_view(), name="api-site"),
    path("devices/", views.DeviceListView.as_view(), name="api-devices"),
    path("devices/import/", views.DeviceImportView.as_view(), name="api-devices-import"),
    path("devices/export/", views.DeviceExportView.as_view(), name="api-devices-export"),
    path("devices/<int:device_id>/", views.DeviceDetailView.as_view(), name="api-device"),
    path(
        "devices/<int:device_id>/revoke/",
        views.DeviceRevokeView.as_view(),
        name="api-device-revoke",
    ),
    path(
        "devices/<int:device_id>/retire/",
        views.DeviceRetireView.as_view(),
        name="api-device-retire",
    ),
    path("groups/", views.GroupListView.as_view(), name="api-groups"),
    path("groups/<int:group_id>/", views.GroupDetailView.as_view(), name="api-group"),
    path(
        "groups/<int:group_id>/devices/",
        views.GroupMembersView.as_view(),
        name="api-group-devices",
    ),
    path("hardware-targets/", views.TargetListView.as_view(), name="api-targets"),
    path(
        "hardware-targets/<int:target_id>/",
        views.TargetDetailView.as_view(),
        name="api-target",
    ),
    path(
        "hardware-targets/<int:target_id>/clone/",
        views.TargetCloneView.as_view(),
        name="api-target-clone",
    ),
    path(
        "enrollment-tokens/",
        views.EnrollmentTokenListView.as_view(),
        name="api-enrollment-tokens",
    ),
    # model registry
    path("models/", model_views.ModelListView.as_view(), name="api-models"),
    path("models/<int:model_id>/", model_views.ModelDetailView.as_view(), name="api-model"),
    path(
        "models/<int:model_id>/versions/",
        model_views.VersionListView.as_view(),
        name="api-model-versions",
    ),
    path(
        "model-versions/<int:version_id>/",
        model_views.VersionDetailView.as_view(),
        name="api-model-version",
    ),
    path(
        "model-versions/<int:version_id>/validations/",
        model_views.VersionValidateView.as_view(),
        name="api-model-version-validate",
    ),
    path(
        "model-versions/<int:version_id>/sign/",
        model_views.VersionSignView.as_view(),
        name="api-model-version-sign",
    ),
    path(
        "model-versions/<int:version_id>/artifact/",
        model_views.VersionArtifactView.as_view(),
        name="api-model-version-artifact",
    ),
    path(
        "model-versions/<int:version_id>/envelope/",
        model_views.VersionEnvelopeView.as_view(),
        name="api-model-version-envelope",
    ),
    path(
        "validation-runs/<int:run_id>/",
        model_views.RunDetailView.as_view(),
        name="api-validation-run",
    ),
    path(
        "validation-runs/<int:run_id>/variants/",
        model_views.RunVariantView.as_view(),
        name="api-validation-run-variants",
    ),
    path("signing-keys/", model_views.SigningKeyListView.as_view(), name="api-signing-keys"),
    path(
        "signing-keys/rotate/",
        model_views.SigningKeyRotateView.as_view(),
        name="api-signing-keys-rotate",
    ),
    path(
        "signing-keys/<int:key_id>/retire/",
        model_views.SigningKeyRetireView.as_view(),
        name="api-signing-key-retire",
    ),
]
