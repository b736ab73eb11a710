"""The one flow of an HTML page that saves a form.

Every such page does the same things on POST: check the member's role, validate the form,
call the service, show a service's ``DomainError`` on the form, flash a message and redirect
(post/redirect/get); or show the form again, with what was typed, and 422. Each view says
only what differs: the form, the service call, the message, where to go and how to render.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from .errors import DomainError
from .forms import apply_domain_error
from .roles import Action


class PostedForm(Protocol):
    def is_valid(self) -> bool: ...


F = TypeVar("F", bound=PostedForm)
T = TypeVar("T")


def handle_form_post(
    request: HttpRequest,
    *,
    form: F | None,
    perform: Callable[[], T],
    success_message: str | Callable[[T], str] | None,
    redirect_to: Callable[[T], str | HttpResponseBase],
    render_invalid: Callable[[int], HttpResponse],
    action: Action | None = None,
    invalid_status: int = 422,
    status_from_error: bool = False,
    apply_error: Callable[[Any, DomainError], None] = apply_domain_error,
) -> HttpResponseBase:
    """Answer the POST of a page's form.

    ``action``: the role check of a page every member may read but only some may change; a
    member whose role does not allow it (or a page that offers no form here, ``form=None``)
    finds nothing to change: 404. Leave it out when the URL's ``org_view`` checks the role.

    ``perform`` calls the service (reading the validated form) and returns what it made;
    ``success_message`` and ``redirect_to`` are given that result. ``redirect_to`` returns
    the URL to redirect to, or the response itself where the answer is not a redirect (an
    HTMX fragment, ``HX-Redirect``, an import report).

    ``render_invalid(status)`` renders the page again with the bound form. The status is
    ``invalid_status`` (422 unless an HTMX fragment answers 200), or the ``DomainError``'s own
    status with ``status_from_error`` (a stale revision is a 409). ``apply_error`` puts the
    error's reasons on the form; forms that are not Django forms bring their own.
    """
    if (action is not None and not request.membership.can(action)) or form is None:
        raise Http404("Nothing to change here.")
    status = invalid_status
    if form.is_valid():
        try:
            result = perform()
        except DomainError as exc:
            apply_error(form, exc)
            if status_from_error:
                status = exc.status
        else:
            if success_message is not None:
                text = success_message(result) if callable(success_message) else success_message
                messages.success(request, text)
            target = redirect_to(result)
            return target if isinstance(target, HttpResponseBase) else redirect(target)
    return render_invalid(status)
