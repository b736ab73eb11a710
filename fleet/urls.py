"""Fleet pages, mounted under /o/<org>/ with the namespace "fleet"."""

from django.urls import path

from . import views

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
    path("fleet/sites/<int:site_id>/policy/", views.site_policy, name="site-policy"),
    path(
        "fleet/sites/<int:site_id>/policy/clear/",
        views.site_policy_clear,
        name="site-policy-clear",
    ),
    path("fleet/enroll/", views.enroll, name="enroll"),
    path("fleet/groups/", views.group_list, name="groups"),
    path("fleet/groups/preview/", views.group_preview, name="group-preview"),
    path("fleet/groups/<int:group_id>/", views.group_detail, name="group"),
    path("fleet/groups/<int:group_id>/delete/", views.group_delete, name="group-delete"),
    path("fleet/groups/<int:group_id>/policy/", views.group_policy, name="group-policy"),
    path(
        "fleet/groups/<int:group_id>/policy/clear/",
        views.group_policy_clear,
        name="group-policy-clear",
    ),
    path("fleet/targets/", views.target_list, name="targets"),
    path("fleet/targets/<int:target_id>/", views.target_detail, name="target"),
    path("fleet/targets/<int:target_id>/clone/", views.target_clone, name="target-clone"),
]
