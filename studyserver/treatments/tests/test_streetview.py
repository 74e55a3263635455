"""The Street View fetcher against a fake API served on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from PIL import Image

from studyserver.treatments import streetview
from studyserver.treatments.models import SourcePhoto

from .conftest import jpeg_bytes

API_KEY = "test-key-123"


class FakeStreetView(BaseHTTPRequestHandler):
    requests_seen: list[dict] = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.server.requests_seen.append({"path": url.path, **query})
        if query.get("key") != API_KEY:
            return self._json(403, {"status": "REQUEST_DENIED", "error_message": "bad key"})
        if url.path.endswith("/metadata"):
            if query["location"] == "middle of the ocean":
                return self._json(200, {"status": "ZERO_RESULTS"})
            return self._json(200, {"status": "OK", "pano_id": "PANO42", "date": "2023-07",
                                    "copyright": "© Fake Street View"})
        body = jpeg_bytes(7, 64)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_api(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStreetView)
    server.requests_seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.STREETVIEW_API_KEY = API_KEY
    settings.STREETVIEW_BASE_URL = f"http://127.0.0.1:{server.server_port}/maps/api/streetview"
    yield server
    server.shutdown()
    server.server_close()


def test_fetch_creates_a_source_photo(fake_api, districts, media):
    source = streetview.fetch_source_photo(
        kind="house", district=districts[0], province_code="", place_name_en="Rouyn-Noranda",
        place_name_fr="Rouyn-Noranda", location="48.2366,-79.0231", heading=90, pitch=5, fov=80,
    )
    assert source.origin == SourcePhoto.Origin.STREETVIEW and source.province_code == "QC"
    assert "PANO42" in source.credit and "Fake Street View" in source.credit
    with Image.open(source.image) as stored:  # re-encoded like every upload (images.clean_photo)
        assert stored.format == "JPEG" and stored.size == (64, 64)
    metadata, image = fake_api.requests_seen
    assert metadata["path"].endswith("/metadata") and image["path"].endswith("/streetview")
    assert image["heading"] == "90" and image["pitch"] == "5" and image["fov"] == "80"
    assert image["size"] == "640x640" and image["location"] == "48.2366,-79.0231"


def test_no_imagery_is_a_clear_error(fake_api, districts, media):
    with pytest.raises(streetview.StreetViewError, match="ZERO_RESULTS"):
        streetview.fetch_image("middle of the ocean")
    assert SourcePhoto.objects.count() == 0


def test_bad_key_error_does_not_leak_the_key(fake_api, settings, media):
    settings.STREETVIEW_API_KEY = "wrong-key"
    with pytest.raises(streetview.StreetViewError) as error:
        streetview.fetch_image("Montréal")
    assert "REQUEST_DENIED" in str(error.value) and "wrong-key" not in str(error.value)


def test_unreachable_server_error_does_not_leak_the_key(settings, media):
    settings.STREETVIEW_API_KEY = API_KEY
    settings.STREETVIEW_BASE_URL = "http://127.0.0.1:9/streetview"  # discard port: connection refused
    with pytest.raises(streetview.StreetViewError) as error:
        streetview.fetch_image("Montréal")
    assert API_KEY not in str(error.value)


def test_not_configured(settings):
    settings.STREETVIEW_API_KEY = ""
    assert not streetview.is_configured()
    with pytest.raises(streetview.StreetViewError, match="not set"):
        streetview.fetch_image("Montréal")


def test_admin_page_fetches(fake_api, districts, media, admin_client):
    response = admin_client.post(reverse("admin:treatments_streetview"), {
        "kind": "district_landmark", "representation_order": "2099", "fed_code": "24002",
        "place_name_en": "Parc-nature de l'Île-de-la-Visitation", "location": "45.57,-73.66", "pitch": 0, "fov": 90,
    })
    source = SourcePhoto.objects.get()
    assert response.status_code == 302 and str(source.pk) in response["Location"]
    assert source.district == districts[1] and source.uploaded_by.username == "admin"
