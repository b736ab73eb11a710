"""OpenAPI description of the device signature scheme (docs/device-api.md has the details)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "fleet.api.device_authentication.DeviceSignatureAuthentication"
    name = "deviceSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-OpsHero-Signature",
            "description": (
                "Ed25519 signature over the canonical request; also send X-OpsHero-Device, "
                "X-OpsHero-Timestamp, X-OpsHero-Nonce and X-OpsHero-Content-SHA256. "
                "See docs/device-api.md."
            ),
        }
