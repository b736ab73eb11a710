from django.urls import path

from . import views

# Organisation-scoped user API, mounted under /api/v1/orgs/<org>/.
urlpatterns = [
    path("sites/", views.SiteListView.as_view(), name="api-sites"),
    path("sites/<int:site_id>/", views.SiteDetailView.as_view(), name="api-site"),
    path("sites/<int:site_id>/policy/", views.SitePolicyView.as_view(), name="api-site-policy"),
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
        "groups/<int:group_id>/policy/",
        views.GroupPolicyView.as_view(),
        name="api-group-policy",
    ),
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
]
