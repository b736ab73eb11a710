"""URL map. Organisation pages live under /o/<org>/, the user API under /api/v1/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import Resolver404, include, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from . import views
from .api.errors import body_refusal, error_response

handler400 = "opshero.urls.handle_400"
handler403 = "opshero.urls.handle_403"
handler404 = "opshero.urls.handle_404"
handler500 = "opshero.urls.handle_500"


def _api_or_page(status: int, message: str, page_view):
    def handler(request, exception=None):
        if request.path.startswith("/api/"):
            return error_response(status, message)
        return page_view(request, exception) if exception is not None else page_view(request)

    return handler


def handle_400(request, exception=None):
    """Django's 400s; an oversized or over-many-field body read before any view is a 413/400."""
    if request.path.startswith("/api/"):
        refused = body_refusal(exception) if exception is not None else None
        if refused is not None:
            return JsonResponse(refused[1], status=refused[0])
        return error_response(400, "Bad request.")
    return bad_request(request, exception)


handle_403 = _api_or_page(
    403, "You do not have permission to perform this action.", views.error_403
)
handle_404 = _api_or_page(404, "Not found.", views.error_404)
handle_500 = _api_or_page(500, "The server failed to handle this request.", views.error_500)


# No CSRF check: the answer is the same 404 for every method and changes nothing, and a
# CSRF 403 would tell a POST caller something other than "no such endpoint".
@csrf_exempt
def api_not_found(request, rest=""):
    """Unknown /api/ paths answer JSON, naming the endpoint the caller probably meant."""
    path_ = request.path
    alternative = path_[:-1] if path_.endswith("/") else path_ + "/"
    try:
        match = resolve(alternative)
    except Resolver404:
        match = None
    if match is not None and match.func is not api_not_found:
        return error_response(404, f"No API endpoint at {path_}; did you mean {alternative}?")
    return error_response(404, f"No API endpoint at {path_}.")


def favicon(request):
    return HttpResponsePermanentRedirect(static("opshero/img/logo.svg"))


org_patterns = [
    path("", views.overview, name="overview"),
    path("members/", views.members, name="members"),
    path("members/add/", views.member_add, name="member-add"),
    path("members/approval-policy/", views.approval_policy, name="approval-policy"),
    path("members/currency/", views.org_currency, name="org-currency"),
    path("members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("audit/", views.audit, name="audit"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/api-tokens/", views.api_tokens, name="api-tokens-page"),
    path(
        "account/api-tokens/<int:token_id>/revoke/",
        views.api_token_revoke,
        name="api-token-revoke-page",
    ),
    path("favicon.ico", favicon),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("o/<slug:org>/", include(org_patterns)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("opshero.api.urls")),
    # Each app's API and pages are mounted here, the project's one composition point.
    path("api/v1/orgs/<slug:org>/", include("fleet.api.urls")),
    path("api/v1/orgs/<slug:org>/", include("modelregistry.api.urls")),
    path("api/v1/orgs/<slug:org>/", include("roi.api.urls")),
    path("api/v1/device/", include("fleet.api.device_urls")),
    path("api/v1/device/", include("telemetry.api.device_urls")),
    path("api/v1/device/", include("review.api.device_urls")),
    path("api/v1/device/", include("rollouts.api.device_urls")),
    path("api/v1/signing-keys/", include("modelregistry.api.signing_urls")),
    path("o/<slug:org>/", include("fleet.urls")),
    path("o/<slug:org>/", include("modelregistry.urls")),
    path("o/<slug:org>/", include("roi.urls")),
    path("o/<slug:org>/", include("telemetry.urls")),
    path("o/<slug:org>/", include("review.urls")),
    path("o/<slug:org>/", include("rollouts.urls")),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]
