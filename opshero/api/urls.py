from django.urls import path

from . import views

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("auth/tokens/", views.TokenListView.as_view(), name="api-tokens"),
    path("auth/tokens/<int:token_id>/", views.TokenDetailView.as_view(), name="api-token-detail"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("orgs/", views.OrganizationListView.as_view(), name="api-orgs"),
    path("orgs/<slug:org>/", views.OrganizationDetailView.as_view(), name="api-org"),
    path("orgs/<slug:org>/members/", views.MemberListView.as_view(), name="api-members"),
    path(
        "orgs/<slug:org>/members/<int:membership_id>/",
        views.MemberDetailView.as_view(),
        name="api-member",
    ),
    path(
        "orgs/<slug:org>/audit-events/",
        views.AuditEventListView.as_view(),
        name="api-audit-events",
    ),
]
