"""Organisation scoping for API views under /api/v1/orgs/<org>/.

The URL names the organisation; the caller must be a member (else 404, so existence is
not confirmed) whose role allows the action the HTTP method maps to (else 403).
"""

from __future__ import annotations

from rest_framework import exceptions

from opshero.roles import Action
from opshero.selectors import membership_for


class OrgScopedMixin:
    #: HTTP method -> action required; methods not listed need Action.VIEW.
    required_actions: dict[str, Action] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, IsAuthenticated, throttles
        membership = membership_for(user=request.user, org_slug=kwargs.get("org", ""))
        if membership is None:
            raise exceptions.NotFound("No such organisation.")
        action = self.required_actions.get(request.method, Action.VIEW)
        if not membership.can(action):
            raise exceptions.PermissionDenied(
                f"Your role ({membership.role}) does not allow this ({action.value})."
            )
        self.org = membership.organization
        self.membership = membership

    @property
    def is_schema_generation(self) -> bool:
        return getattr(self, "swagger_fake_view", False)
