"""Optional source photos from the Street View Static API.

The API key comes from the environment (``STREETVIEW_API_KEY``) and the endpoint from
``STREETVIEW_BASE_URL`` (tests point it at a local fake server). The free metadata endpoint is asked
first, so a location without imagery costs nothing and gives a clear message. Error messages never
contain the request URL, which would carry the key.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from .images import PhotoError, clean_photo
from .models import SourcePhoto

IMAGE_SIZE = "640x640"  # the generator's working size; the largest the standard API serves
TIMEOUT_SECONDS = 20


class StreetViewError(RuntimeError):
    """The API gave no usable image (not configured, no imagery, refused, unreachable)."""


def is_configured() -> bool:
    return bool(settings.STREETVIEW_API_KEY)


def _query(location: str, heading: float | None, pitch: float | None, fov: int | None) -> dict[str, Any]:
    query: dict[str, Any] = {"location": location, "size": IMAGE_SIZE, "source": "outdoor",
                             "key": settings.STREETVIEW_API_KEY}
    if heading is not None:
        query["heading"] = f"{heading:g}"
    if pitch is not None:
        query["pitch"] = f"{pitch:g}"
    if fov is not None:
        query["fov"] = str(fov)
    return query


def _get(url: str, query: dict[str, Any]) -> requests.Response:
    try:
        return requests.get(url, params=query, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise StreetViewError(f"Street View API unreachable ({type(error).__name__}).") from None


def fetch_image(location: str, heading: float | None = None, pitch: float | None = None,
                fov: int | None = None) -> tuple[bytes, dict[str, Any]]:
    """The JPEG bytes for ``location`` and the metadata (pano id, date, copyright)."""
    if not is_configured():
        raise StreetViewError("STREETVIEW_API_KEY is not set.")
    base = settings.STREETVIEW_BASE_URL.rstrip("/")
    query = _query(location, heading, pitch, fov)
    meta_response = _get(f"{base}/metadata", query)
    try:
        metadata = meta_response.json()
    except ValueError:
        raise StreetViewError(f"Street View metadata answered HTTP {meta_response.status_code} without JSON.") from None
    status = metadata.get("status", "UNKNOWN")
    if status != "OK":
        detail = {"ZERO_RESULTS": "no imagery near this location", "NOT_FOUND": "location not found",
                  "REQUEST_DENIED": "the API refused the key"}.get(status, metadata.get("error_message", ""))
        raise StreetViewError(f"Street View: {status} ({detail}).")
    response = _get(base, {**query, "return_error_code": "true"})
    if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith("image/"):
        raise StreetViewError(f"Street View image request answered HTTP {response.status_code}.")
    try:
        photo = clean_photo(response.content)
    except PhotoError as error:
        raise StreetViewError(f"Street View returned an unusable image: {error}.") from None
    if photo.extension != "jpg":
        raise StreetViewError("Street View returned a PNG where a JPEG was expected.")
    return photo.content, metadata


def fetch_source_photo(*, kind: str, district: Any, province_code: str, place_name_en: str,
                       place_name_fr: str, location: str, heading: float | None = None,
                       pitch: float | None = None, fov: int | None = None, generate: bool = False,
                       uploaded_by: Any = None) -> SourcePhoto:
    """Fetch one image and store it as a source photo (optionally queueing its generation)."""
    from . import services

    data, metadata = fetch_image(location, heading, pitch, fov)
    credit = " · ".join(str(part) for part in (
        metadata.get("copyright", "Google Street View"), metadata.get("date"), f"pano {metadata.get('pano_id', '?')}",
    ) if part)
    with transaction.atomic():
        source = SourcePhoto(
            kind=kind, district=district, province_code=province_code, place_name_en=place_name_en,
            place_name_fr=place_name_fr, origin=SourcePhoto.Origin.STREETVIEW, credit=credit[:300],
            uploaded_by=uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None,
        )
        source.full_clean(exclude=["image"])
        source.image.save(f"streetview-{metadata.get('pano_id', 'image')}.jpg", ContentFile(data), save=False)
        source.save()
        if generate:
            services.queue_stimulus(source)
    return source
