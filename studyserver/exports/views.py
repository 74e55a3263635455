"""The read-only research API: studies, the export (CSV/JSON), the funnel and the codebook.

Authentication and permissions come from settings (token or session; staff only). Malformed
requests are answered 400 with a JSON ``detail``; personal data needs the dedicated permission
and ``?include_personal=1``; every export is logged.
"""

from __future__ import annotations

from dataclasses import asdict

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from studyserver.studies.models import Study

from .access import export_frame, log_export
from .codebook import build_codebook
from .formats import API_FORMATS, CONTENT_TYPES, ExportFormatError, check_format, export_bytes
from .funnel import funnel
from .models import ExportLog
from .serializers import CodebookRowSerializer, ErrorSerializer, FunnelSerializer, StudySerializer

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"", "0", "false", "no", "off"}


def parse_flag(request: Request, name: str) -> bool:
    """A yes/no query parameter; anything else is a malformed request (400)."""
    raw = request.query_params.get(name, "").strip().lower()
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise ParseError(f"{name} must be 1 or 0, got {raw!r}.")


class StudyListView(ListAPIView):
    """Every study, with its participant count."""

    serializer_class = StudySerializer
    pagination_class = None

    def get_queryset(self):
        return (Study.objects.annotate(participant_count=Count("participants"))
                .select_related("questionnaire").defer("questionnaire__source").order_by("slug"))


class StudyExportView(APIView):
    """One row per participant, as CSV or JSON records (same columns as the file export)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(API_FORMATS),
                             description="csv or json (the URL ends in export.csv or export.json)."),
            OpenApiParameter("include_personal", OpenApiTypes.BOOL, OpenApiParameter.QUERY,
                             description="1: add personal data (needs survey.export_personal_data)."),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="The export file (CSV or JSON)."),
            400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer,
        },
    )
    def get(self, request: Request, slug: str, fmt: str) -> HttpResponse:
        try:
            fmt = check_format(fmt, API_FORMATS)
        except ExportFormatError as error:
            raise ParseError(str(error)) from None
        include_personal = parse_flag(request, "include_personal")
        study = get_object_or_404(Study, slug=slug)
        try:
            frame = export_frame(study, user=request.user, include_personal=include_personal)
        except PermissionDenied as error:
            raise ApiPermissionDenied(str(error)) from None
        content = export_bytes(frame, fmt)
        log_export(study, user=request.user, fmt=fmt, channel=ExportLog.Channel.API,
                   row_count=len(frame), include_personal=include_personal)
        response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
        if fmt == "csv":
            response["Content-Disposition"] = f'attachment; filename="{study.slug}.csv"'
        response["X-Row-Count"] = str(len(frame))
        response["Cache-Control"] = "no-store"
        return response


class StudyFunnelView(APIView):
    """Started, consented, declined, screened out by reason, and per arm: assigned, exposed,
    completed, attrited after assignment, withdrawn."""

    @extend_schema(responses={200: FunnelSerializer, 404: ErrorSerializer})
    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        return Response(funnel(study))


class CodebookView(APIView):
    """The codebook of the study's export: every questionnaire version its participants answered
    (a variable whose codes or wording changed has one row per version, see ``versions``)."""

    @extend_schema(responses={200: CodebookRowSerializer(many=True), 404: ErrorSerializer})
    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        rows = build_codebook(include_personal=False, study=study)
        return Response([asdict(row) for row in rows], status=status.HTTP_200_OK)
