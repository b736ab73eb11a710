"""Model registry API: models, version uploads, validation runs, signing, keys, downloads."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet import selectors as fleet_selectors
from fleet.api.device_authentication import DeviceSignatureAuthentication
from opshero.actors import Actor
from opshero.api.parsers import ApiFormParser, ApiJSONParser, ApiMultiPartParser
from opshero.api.scoping import OrgScopedMixin
from opshero.errors import InvalidInput, TooLarge
from opshero.roles import Action
from opshero.selectors import membership_for

from .. import selectors as ms
from .. import services, signing_selectors, signing_services, uploads
from ..models import SigningKey
from .serializers import (
    MlModelSerializer,
    PublicKeySerializer,
    ReviewSerializer,
    RunSerializer,
    RunSummarySerializer,
    SignatureSerializer,
    SigningKeySerializer,
    SignSerializer,
    UploadSerializer,
    ValidateSerializer,
    VariantSerializer,
    VersionDetailSerializer,
    VersionSerializer,
)


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _payload(serializer_class, data, **kwargs) -> dict:
    body = serializer_class(data=data, **kwargs)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class ModelListView(OrgScopedMixin, generics.ListAPIView):
    """Models of the organisation. POST creates one (approvers and admins)."""

    serializer_class = MlModelSerializer
    required_actions = {"POST": Action.MANAGE_MODELS}

    def get_queryset(self):
        return ms.models_for_org(org=self.org)

    @extend_schema(
        request=MlModelSerializer,
        responses={201: MlModelSerializer},
        examples=[
            OpenApiExample(
                "dock damage",
                request_only=True,
                value={"name": "dock-damage", "task": "classification", "latency_budget_ms": 150},
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(MlModelSerializer, request.data)
        model = services.create_model(organization=self.org, actor=_actor(request), **data)
        return Response(
            MlModelSerializer(ms.models_for_org(org=self.org).get(pk=model.pk)).data, 201
        )


class ModelDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_MODELS}

    def _model(self, model_id):
        model = ms.models_for_org(org=self.org).filter(pk=model_id).first()
        if model is None:
            raise NotFound("No such model.")
        return model

    @extend_schema(responses=MlModelSerializer)
    def get(self, request, org: str, model_id: int):
        return Response(MlModelSerializer(self._model(model_id)).data)

    @extend_schema(request=MlModelSerializer, responses=MlModelSerializer)
    def patch(self, request, org: str, model_id: int):
        data = _payload(MlModelSerializer, request.data, partial=True)
        services.update_model(model=self._model(model_id), actor=_actor(request), **data)
        return Response(MlModelSerializer(self._model(model_id)).data)


class VersionListView(OrgScopedMixin, generics.ListAPIView):
    """Versions of a model. POST uploads one (multipart: artifact, version, optional
    inputs_file .npz, shape_buckets JSON, release_notes); the SHA-256 is computed while the
    file arrives and the file is inspected before anything is stored."""

    serializer_class = VersionSerializer
    required_actions = {"POST": Action.MANAGE_MODELS}
    parser_classes = [ApiMultiPartParser, ApiFormParser, ApiJSONParser]

    def dispatch(self, request, *args, **kwargs):
        # The hashing handler must be installed before anything reads the body.
        self._declared_too_large = None
        if request.method == "POST":
            self._declared_too_large = uploads.install(
                request, max_bytes=settings.MODEL_UPLOAD_MAX_BYTES
            )
        return super().dispatch(request, *args, **kwargs)

    def _model(self, model_id):
        model = ms.model_for_org(org=self.org, pk=model_id)
        if model is None:
            raise NotFound("No such model.")
        return model

    def get_queryset(self):
        return ms.versions_for_model(model=self._model(self.kwargs["model_id"]))

    @extend_schema(
        request={"multipart/form-data": UploadSerializer}, responses={201: VersionSerializer}
    )
    def post(self, request, org: str, model_id: int):
        limit = settings.MODEL_UPLOAD_MAX_BYTES
        if self._declared_too_large is not None:
            raise TooLarge(
                f"The request is {self._declared_too_large:,} bytes; the limit is {limit:,}.",
                fields={"artifact": ["Too large."]},
            )
        model = self._model(model_id)
        data = request.data  # parsing happens here, through the hashing handler
        if uploads.was_cut_off(request._request):
            raise TooLarge(
                f"The upload exceeded the limit of {limit:,} bytes.",
                fields={"artifact": ["Too large."]},
            )
        body = _payload(UploadSerializer, data)
        version = services.upload_version(
            model=model,
            actor=_actor(request),
            artifact=body["artifact"],
            version=body["version"],
            release_notes=body.get("release_notes", ""),
            inputs_file=body.get("inputs_file"),
            shape_buckets=body.get("shape_buckets"),
            io_contract=body.get("io_contract"),
        )
        return Response(VersionSerializer(version).data, status=201)


class VersionMixin(OrgScopedMixin):
    def _version(self, version_id):
        version = ms.version_for_org(org=self.org, pk=version_id)
        if version is None:
            raise NotFound("No such model version.")
        return version


class VersionDetailView(VersionMixin, APIView):
    @extend_schema(responses=VersionDetailSerializer)
    def get(self, request, org: str, version_id: int):
        return Response(VersionDetailSerializer(self._version(version_id)).data)


class VersionValidateView(VersionMixin, APIView):
    """Queue a validation run of this version on a hardware target."""

    required_actions = {"POST": Action.MANAGE_MODELS}

    @extend_schema(
        request=ValidateSerializer,
        responses={202: RunSummarySerializer},
        examples=[
            OpenApiExample(
                "cpu, batch 1 and 8",
                request_only=True,
                value={"target": 1, "shape_buckets": {"batch": [1, 8]}},
            )
        ],
    )
    def post(self, request, org: str, version_id: int):
        data = _payload(ValidateSerializer, request.data)
        target = fleet_selectors.target_for_org(org=self.org, pk=data["target"])
        if target is None:
            raise InvalidInput("Unknown hardware target.", fields={"target": ["No such target."]})
        run = services.start_validation(
            version=self._version(version_id),
            target=target,
            actor=_actor(request),
            shape_buckets=data["shape_buckets"],
            use_uploaded_inputs=data["use_uploaded_inputs"],
        )
        return Response(RunSummarySerializer(run).data, status=status.HTTP_202_ACCEPTED)


class VersionSignView(VersionMixin, APIView):
    """Sign a validated version (approvers only); returns the signature with its manifest."""

    required_actions = {"POST": Action.SIGN_MODELS}

    @extend_schema(request=SignSerializer, responses={201: SignatureSerializer})
    def post(self, request, org: str, version_id: int):
        data = _payload(SignSerializer, request.data)
        signature = signing_services.sign_version(
            version=self._version(version_id),
            actor=_actor(request),
            role=self.membership.role,
            valid_days=data.get("valid_days"),
            accuracy_waiver=data.get("accuracy_waiver", ""),
        )
        return Response(SignatureSerializer(signature).data, status=201)


class VersionArtifactView(VersionMixin, APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, org: str, version_id: int):
        version = self._version(version_id)
        response = FileResponse(
            version.artifact.open("rb"), as_attachment=True, filename=ms.download_name(version)
        )
        response["X-Content-SHA256"] = version.sha256
        return response


class VersionEnvelopeView(VersionMixin, APIView):
    """The newest signature envelope (Sigstore bundle with a DSSE envelope) of this version."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request, org: str, version_id: int):
        signature = ms.latest_signature(version=self._version(version_id))
        if signature is None:
            raise NotFound("This version has no signature made with an active key.")
        return HttpResponse(signature.envelope, content_type="application/json")


class RunDetailView(OrgScopedMixin, APIView):
    """A validation run: status, steps so far and, when finished, the full report."""

    @extend_schema(responses=RunSerializer)
    def get(self, request, org: str, run_id: int):
        run = ms.run_for_org(org=self.org, pk=run_id)
        if run is None:
            raise NotFound("No such validation run.")
        return Response(RunSerializer(run).data)


class RunReviewView(OrgScopedMixin, APIView):
    """Accept or reject a run whose latency gate stayed inconclusive (approvers), with a reason;
    409 unless the run needs review."""

    required_actions = {"POST": Action.REVIEW_VALIDATIONS}

    @extend_schema(
        request=ReviewSerializer,
        responses={200: RunSerializer},
        examples=[
            OpenApiExample(
                "accept",
                request_only=True,
                value={"decision": "accept", "reason": "P95 12 ms on the device itself"},
            )
        ],
    )
    def post(self, request, org: str, run_id: int):
        run = ms.run_for_org(org=self.org, pk=run_id)
        if run is None:
            raise NotFound("No such validation run.")
        data = _payload(ReviewSerializer, request.data)
        run = services.review_validation_run(run=run, actor=_actor(request), **data)
        return Response(RunSerializer(ms.run_for_org(org=self.org, pk=run.pk)).data)


class RunVariantView(OrgScopedMixin, APIView):
    """Register the INT8 or FP16 variant a run produced as a new version (derived_from set)."""

    required_actions = {"POST": Action.MANAGE_MODELS}

    @extend_schema(request=VariantSerializer, responses={201: VersionSerializer})
    def post(self, request, org: str, run_id: int):
        run = ms.run_for_org(org=self.org, pk=run_id)
        if run is None:
            raise NotFound("No such validation run.")
        data = _payload(VariantSerializer, request.data)
        version = services.register_variant(run=run, actor=_actor(request), **data)
        return Response(VersionSerializer(version).data, status=201)


# --- signing keys ---------------------------------------------------------------------------------


class SigningKeyListView(OrgScopedMixin, generics.ListAPIView):
    """Signing keys (public parts). POST creates the first key (admins)."""

    serializer_class = SigningKeySerializer
    required_actions = {"POST": Action.MANAGE_SIGNING_KEYS}

    def get_queryset(self):
        return ms.signing_keys_for_org(org=self.org)

    @extend_schema(request=None, responses={201: SigningKeySerializer})
    def post(self, request, org: str):
        key = signing_services.create_signing_key(organization=self.org, actor=_actor(request))
        return Response(SigningKeySerializer(key).data, status=201)


class SigningKeyRotateView(OrgScopedMixin, APIView):
    """New key, live signatures re-signed with it, old key retired."""

    required_actions = {"POST": Action.MANAGE_SIGNING_KEYS}

    @extend_schema(request=None, responses={201: SigningKeySerializer})
    def post(self, request, org: str):
        key = signing_services.rotate_signing_key(organization=self.org, actor=_actor(request))
        return Response(SigningKeySerializer(key).data, status=201)


class SigningKeyRetireView(OrgScopedMixin, APIView):
    required_actions = {"POST": Action.MANAGE_SIGNING_KEYS}

    @extend_schema(request=None, responses=SigningKeySerializer)
    def post(self, request, org: str, key_id: int):
        key = SigningKey.objects.filter(organization=self.org, pk=key_id).first()
        if key is None:
            raise NotFound("No such key.")
        key = signing_services.retire_signing_key(key=key, actor=_actor(request))
        return Response(SigningKeySerializer(key).data)


class PublicSigningKeysView(APIView):
    """Model-signing public keys to trust: a signed device request gets its organisation's;
    a user names the organisation with ?org=<slug>."""

    authentication_classes = [
        DeviceSignatureAuthentication,
        *APIView.authentication_classes,
    ]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("org", OpenApiTypes.STR, description="for user callers")],
        responses=PublicKeySerializer(many=True),
    )
    def get(self, request):
        from fleet.models import Device

        if isinstance(request.auth, Device):
            return Response(signing_selectors.public_keys_for_device(device=request.auth))
        slug = request.query_params.get("org", "")
        if not slug:
            raise InvalidInput("Name the organisation: ?org=<slug>.", fields={"org": ["Required."]})
        membership = membership_for(user=request.user, org_slug=slug)
        if membership is None:
            raise NotFound("No such organisation.")
        return Response(signing_selectors.public_keys(organization=membership.organization))
