"""Resolve the organisation of an HTML request and check the member's role.

Every organisation page lives under ``/o/<org>/``. A user who is not a member of the
organisation gets a 404 (the organisation's existence is not confirmed); a member whose
role does not allow the action gets a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from .money import use_currency
from .roles import Action
from .selectors import membership_for

SESSION_ORG_KEY = "opshero_org"


def org_view(action: Action = Action.VIEW) -> Callable:
    """Decorate a view taking ``org`` from the URL.

    Sets ``request.org`` and ``request.membership`` for the view and the templates.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, org: str, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(user=request.user, org_slug=org)
            if membership is None:
                raise Http404("No such organisation.")
            if not membership.can(action):
                raise PermissionDenied(
                    f"Your role ({membership.get_role_display()}) cannot do this."
                )
            request.org = membership.organization
            request.membership = membership
            if request.session.get(SESSION_ORG_KEY) != org:  # write the session only on a switch
                request.session[SESSION_ORG_KEY] = org
            with use_currency(request.org.currency):
                return view(request, *args, **kwargs)

        wrapper.org_action = action
        return wrapper

    return decorator
