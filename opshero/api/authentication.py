"""Personal API tokens: ``Authorization: Bearer ohu_...`` (or ``Token ohu_...``).

Only a SHA-256 of each token is stored, so a database leak does not leak usable tokens.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from opshero.models import ApiToken
from opshero.tokens import TOKEN_PREFIX, hash_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be '<scheme> <token>'."
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token contains invalid characters.") from exc
        if not token.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("This is not an OpsHero user token.")
        record = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        now = timezone.now()
        if record is None or (record.expires_at and record.expires_at <= now):
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        if not record.user.is_active:
            raise exceptions.AuthenticationFailed("This user is deactivated.")
        # Record use at most once a minute to keep authentication read-only in bursts.
        if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        return record.user, record

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
