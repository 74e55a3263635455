"""Serving approved treatment images to participants, and the researchers' staff-only pages.

The participant URL is ``/stimuli/<public_id>.jpg``: a random id, no participant data. Anything but
an approved stimulus with a result answers 404, exactly like an id that never existed. The staff
pages (review queue, coverage board, bulk upload, Street View fetch) are mounted in the admin by
``admin.py`` and wrapped in ``admin_site.admin_view`` (staff login required).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from studyserver.accounts.guards import permission_required
from studyserver.geo.models import District
from studyserver.studies.arms import ARMS, CONTROL_ARM
from studyserver.studies.models import Study

from . import services
from .forms import BulkUploadForm, ReviewForm, StreetViewForm
from .images import served_content_type
from .models import PHOTO_BACKEND, Kind, SourcePhoto, Stimulus
from .signals import image_served

# Private: a shared cache would answer without reaching the server, and the first time the image
# bytes reach a participant is an exposure measurement. Immutable: a public id never changes image.
IMAGE_CACHE_CONTROL = "private, max-age=86400, immutable"


@require_safe
def stimulus_image(request: HttpRequest, public_id: str) -> HttpResponse:
    stimulus = (
        Stimulus.objects.filter(public_id=public_id, status=Stimulus.Status.APPROVED).exclude(result="").first()
    )
    if stimulus is None:
        raise Http404("No such image.")
    etag = f'"{stimulus.public_id}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        try:
            handle = stimulus.result.open("rb")
        except FileNotFoundError as missing:
            raise Http404("No such image.") from missing
        response = FileResponse(handle, content_type="image/jpeg")
    if request.method == "GET":
        image_served.send(sender=Stimulus, request=request, public_id=stimulus.public_id)
    response["ETag"] = etag
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- Staff pages (wrapped by the admin site) -------------------------------------------------------


def _admin_context(request: HttpRequest, admin_site: Any, title: str) -> dict[str, Any]:
    return {**admin_site.each_context(request), "title": title, "opts": Stimulus._meta}


VIEW = "treatments.view_stimulus"
REVIEW = "treatments.review_stimulus"
UPLOAD = "treatments.add_sourcephoto"
GENERATE = "treatments.add_stimulus"


@require_safe
@permission_required(VIEW)
def staff_file(request: HttpRequest, pk: int, which: str) -> HttpResponse:
    """Any stimulus' source, mask or result for reviewers (participants never reach this)."""
    stimulus = get_object_or_404(Stimulus.objects.select_related("source"), pk=pk)
    field = {"source": stimulus.source.image, "mask": stimulus.mask, "result": stimulus.result}.get(which)
    if not field:
        raise Http404("No such file.")
    try:
        handle = field.open("rb")
    except FileNotFoundError as missing:
        raise Http404("No such file.") from missing
    content_type = served_content_type(handle)
    if content_type is None:
        # Not a JPEG/PNG (a file stored before uploads were re-encoded): a download, never a page.
        response = FileResponse(handle, content_type="application/octet-stream", as_attachment=True,
                                filename=f"stimulus-{stimulus.pk}-{which}.bin")
    else:
        response = FileResponse(handle, content_type=content_type)
        response["Content-Disposition"] = "inline"
    # Even if a browser were to render it as a document, it could run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
@permission_required(VIEW)
def review_queue(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """Generated stimuli side by side with their source and mask; approve / reject / regenerate."""
    if request.method == "POST":
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied(f"Reviewing needs the permission {REVIEW}.")
        form = ReviewForm(request.POST)
        if form.is_valid():
            stimulus = get_object_or_404(Stimulus, pk=form.cleaned_data["stimulus"])
            action = form.cleaned_data["action"]
            note = form.cleaned_data["note"]
            try:
                if action == "approve":
                    services.approve(stimulus, request.user, note)
                    messages.success(request, f"Stimulus {stimulus.pk} approved.")
                elif action == "reject":
                    services.reject(stimulus, request.user, note)
                    messages.success(request, f"Stimulus {stimulus.pk} rejected.")
                else:
                    replacement = services.regenerate(stimulus, request.user, note)
                    messages.success(
                        request, f"Stimulus {stimulus.pk} regenerated as {replacement.pk} (seed {replacement.seed})."
                    )
            except services.ReviewError as error:
                messages.error(request, str(error))
        else:
            messages.error(request, "Invalid review request.")
        return redirect(reverse("admin:treatments_review_queue"))
    queue = list(services.review_queue()[:50])
    context = _admin_context(request, admin_site, "Review queue")
    from .weights import TEST_WEIGHT_BACKENDS, generator_uses_test_weights

    context.update({"queue": queue, "total": services.review_queue().count(),
                    "queued": Stimulus.objects.filter(status=Stimulus.Status.QUEUED).count(),
                    "test_weights": generator_uses_test_weights(), "test_weight_backends": TEST_WEIGHT_BACKENDS,
                    "photo_backend": PHOTO_BACKEND})
    return TemplateResponse(request, "treatments/admin/review_queue.html", context)


@require_safe
@permission_required(VIEW)
def coverage_board(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """Districts × kinds: missing / queued / generated / approved, and whether the study can open."""
    studies = list(Study.objects.order_by("-created_at"))
    study = next((s for s in studies if s.slug == request.GET.get("study")), studies[0] if studies else None)
    order = study.representation_order if study else request.GET.get("ro", "2023")
    include_demo = bool(study and study.demo)
    arms = [arm for arm in (services.study_arms(study) if study else ARMS) if arm != CONTROL_ARM]
    # The study's scope decides which districts need material (a pilot covers only its own).
    scoped = study.districts_in_scope() if study else District.objects.filter(representation_order=order)
    districts = list(scoped.order_by("province_code", "name_en"))
    coverage = services.material_coverage(districts, include_demo=include_demo)
    rows = []
    totals = {kind: dict.fromkeys(services.SLOT_STATES, 0) for kind in arms}
    blocked = 0
    for district in districts:
        states = coverage[district.pk]
        cells = [(kind, states[kind]) for kind in arms]
        complete = all(state == Stimulus.Status.APPROVED for _, state in cells)
        blocked += not complete
        for kind, state in cells:
            totals[kind][state] += 1
        rows.append({"district": district, "cells": cells, "complete": complete})
    can_open = bool(districts) and blocked == 0
    if request.GET.get("incomplete"):
        rows = [row for row in rows if not row["complete"]]
    context = _admin_context(request, admin_site, "Treatment coverage")
    context.update({
        "studies": studies, "study": study, "order": order, "arms": arms, "rows": rows,
        "totals": totals, "states": services.SLOT_STATES, "district_count": len(districts),
        "blocked": blocked, "can_open": can_open, "include_demo": include_demo,
        "scope": study.scope_summary() if study else "all districts",
        "demo_material": SourcePhoto.objects.filter(is_demo=True).exists(),
    })
    return TemplateResponse(request, "treatments/admin/coverage.html", context)


@require_http_methods(["GET", "POST"])
@permission_required(UPLOAD)
def bulk_upload(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """A zip of photos with a CSV manifest; nothing is imported unless every row is valid."""
    from .bulk import import_zip

    report = None
    form = BulkUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["generate"] and not request.user.has_perm(GENERATE):
        form.add_error("generate", f"Queueing generation needs the permission {GENERATE}: untick it.")
    if request.method == "POST" and form.is_valid():
        report = import_zip(
            form.cleaned_data["archive"],
            representation_order=form.cleaned_data["representation_order"],
            uploaded_by=request.user,
            generate=form.cleaned_data["generate"],
        )
        if report.ok:
            messages.success(request, f"Imported {len(report.created)} source photos.")
            return redirect(reverse("admin:treatments_sourcephoto_changelist"))
    context = _admin_context(request, admin_site, "Bulk upload of source photos")
    context.update({"form": form, "report": report, "kinds": Kind.values})
    refused = request.method == "POST" and (report is not None or not form.is_valid())
    return TemplateResponse(request, "treatments/admin/bulk_upload.html", context, status=400 if refused else 200)


@require_http_methods(["GET", "POST"])
@permission_required(UPLOAD)
def streetview_fetch(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """Fetch a source photo from the Street View Static API (key from the environment)."""
    from .streetview import StreetViewError, fetch_source_photo, is_configured

    form = StreetViewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            source = fetch_source_photo(uploaded_by=request.user, **form.source_fields())
        except StreetViewError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Fetched {source}.")
            return redirect(reverse("admin:treatments_sourcephoto_change", args=[source.pk]))
    context = _admin_context(request, admin_site, "Street View source photo")
    context.update({"form": form, "configured": is_configured()})
    return TemplateResponse(request, "treatments/admin/streetview.html", context)
