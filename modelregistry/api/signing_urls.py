"""/api/v1/signing-keys/: the model-signing public keys, for a device (its organisation's) or
a user (?org=<slug>)."""

from django.urls import path

from .views import PublicSigningKeysView

urlpatterns = [path("", PublicSigningKeysView.as_view(), name="api-public-signing-keys")]
