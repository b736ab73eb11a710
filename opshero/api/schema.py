"""OpenAPI descriptions for OpsHero's own authentication classes (loaded in AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "opshero.api.authentication.ApiTokenAuthentication"
    name = "userToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "Personal token from POST /api/v1/auth/token/ (Authorization: Bearer ohu_...)."
            ),
        }
