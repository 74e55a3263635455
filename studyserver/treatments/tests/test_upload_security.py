"""Uploads are JPEG/PNG only, re-encoded and renamed; staff file views never serve a page."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from studyserver.treatments.images import MAX_PIXELS, PhotoError, clean_photo
from studyserver.treatments.models import SourcePhoto

from .conftest import jpeg_bytes, png_bytes
from .test_views import make_zip

SCRIPT = b"<html><script>fetch('/admin/auth/user/')</script></html>"


def gif_with_html() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "GIF")
    return buffer.getvalue() + SCRIPT


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org", "pw"))
    return client


def test_clean_photo_reencodes_and_drops_appended_bytes():
    photo = clean_photo(jpeg_bytes(1) + SCRIPT)
    assert photo.extension == "jpg" and photo.content_type == "image/jpeg"
    assert SCRIPT not in photo.content and photo.content.startswith(b"\xff\xd8")
    assert photo.filename("flood-photo.html") == "flood-photo.jpg"
    assert clean_photo(png_bytes(2)).filename("../../x.png.html") == "x.png.png"


def test_clean_photo_refuses_other_formats_and_huge_images():
    with pytest.raises(PhotoError, match="GIF file: only JPEG and PNG"):
        clean_photo(gif_with_html())
    with pytest.raises(PhotoError, match="not a readable image"):
        clean_photo(SCRIPT)
    side = int(MAX_PIXELS ** 0.5) + 10  # just over the limit, as a tiny one-colour PNG
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    with pytest.raises(PhotoError, match="image too large"):
        clean_photo(buffer.getvalue())


def test_bulk_upload_stores_the_reencoded_photo_under_the_detected_format(staff_client, districts, media):
    archive = make_zip(["flood-photo.html,house,24001,,Abitibi,", "b.gif,house,24002,,Ahuntsic,"],
                       {"flood-photo.html": jpeg_bytes(1) + SCRIPT, "b.gif": gif_with_html()})
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 400
    assert {(e.row, e.filename) for e in response.context["report"].errors} == {(3, "b.gif")}
    archive = make_zip(["flood-photo.html,house,24001,,Abitibi,"], {"flood-photo.html": jpeg_bytes(1) + SCRIPT})
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 302
    source = SourcePhoto.objects.get()
    assert source.image.name.endswith(".jpg") and "html" not in source.image.name.rsplit("/", 1)[-1][-5:]
    assert SCRIPT not in source.image.open("rb").read()


def test_a_damaged_zip_is_a_form_error_not_a_500(staff_client, districts, media):
    archive = make_zip(["a.png,house,24001,,Abitibi,"], {"a.png": png_bytes(1)})
    data = bytearray(archive.getvalue())
    offset = data.index(png_bytes(1)[:16])  # inside the stored photo: its CRC no longer matches
    data[offset + 20] ^= 0xFF
    upload = io.BytesIO(bytes(data))
    upload.name = "sources.zip"
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": upload, "representation_order": "2099"})
    assert response.status_code == 400
    assert "The archive is damaged" in response.content.decode()
    assert SourcePhoto.objects.count() == 0


def test_single_upload_has_the_bulk_limits(staff_client, districts, media):
    side = int(MAX_PIXELS ** 0.5) + 10
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    for data, message in ((buffer.getvalue(), "Image too large"), (gif_with_html(), "only JPEG and PNG")):
        upload = io.BytesIO(data)
        upload.name = "flood-photo.png"
        response = staff_client.post(reverse("admin:treatments_sourcephoto_add"), {
            "kind": "house", "representation_order": districts[2].representation_order, "fed_code": districts[2].fed_code,
            "place_name_en": "Ajax", "image": upload, "generate": "",
        })
        assert response.status_code == 200 and message in response.content.decode()
    upload = io.BytesIO(jpeg_bytes(4) + SCRIPT)
    upload.name = "flood-photo.png"  # a JPEG with HTML appended, under another format's name
    response = staff_client.post(reverse("admin:treatments_sourcephoto_add"), {
        "kind": "house", "representation_order": districts[2].representation_order, "fed_code": districts[2].fed_code,
            "place_name_en": "Ajax", "image": upload, "generate": "",
    })
    assert response.status_code == 302
    stored = SourcePhoto.objects.get().image
    assert stored.name.endswith("flood-photo.jpg") and SCRIPT not in stored.open("rb").read()


def test_staff_file_view_sends_an_image_type_and_a_sandbox(staff_client, districts, make_stimulus):
    stimulus = make_stimulus("house", districts[0])
    response = staff_client.get(reverse("admin:treatments_stimulus_file", args=[stimulus.pk, "source"]))
    assert response["Content-Type"] == "image/png"
    assert "sandbox" in response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"
    # A file stored before uploads were re-encoded, HTML under an .html name: a download, not a page.
    source = stimulus.source
    source.image.save("flood-photo.html", ContentFile(gif_with_html()), save=True)
    response = staff_client.get(reverse("admin:treatments_stimulus_file", args=[stimulus.pk, "source"]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]


def _bomb_zip(member_bytes: int, *, lie_about_size: int | None = None) -> io.BytesIO:
    """A valid manifest and one 'photo' of zeros (deflated ≈1000:1); ``lie_about_size`` rewrites the
    size its headers declare, as a hand-made bomb would."""
    import struct
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.csv", "filename,kind,fed_code,province_code,place_name_en,place_name_fr\n"
                        "a.jpg,house,24001,,Abitibi,\n")
        bundle.writestr("photos/a.jpg", bytes(member_bytes))
    data = bytearray(buffer.getvalue())
    if lie_about_size is not None:
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            start = 0
            while (start := data.find(signature, start)) != -1:
                name_at = start + (30 if signature == b"PK\x03\x04" else 46)
                if data[name_at:name_at + 12] == b"photos/a.jpg":
                    struct.pack_into("<I", data, start + offset, lie_about_size)
                start += 4
    upload = io.BytesIO(bytes(data))
    upload.name = "sources.zip"
    return upload


@pytest.fixture
def no_decompression(monkeypatch):
    """Called once the archive is built: from then on, decompressing any zip member fails the test."""
    import zipfile

    def refuse(*args, **kwargs):
        raise AssertionError("a member was decompressed before the archive's declared sizes were checked")

    def activate() -> None:
        monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
        monkeypatch.setattr(zipfile.ZipFile, "testzip", refuse)

    return activate


def test_a_zip_bomb_is_refused_by_its_declared_ratio_before_anything_is_decompressed(
        staff_client, districts, media, no_decompression):
    archive = _bomb_zip(30 * 1024 * 1024)  # 30 MB of zeros, under the 40 MB photo limit, ≈30 KB zipped
    assert len(archive.getvalue()) < 100_000
    no_decompression()
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 400
    assert "photos/a.jpg is compressed" in response.content.decode() and "to 1" in response.content.decode()
    assert SourcePhoto.objects.count() == 0


def test_a_member_over_the_photo_limit_is_refused_by_its_declared_size(staff_client, districts, media,
                                                                         no_decompression):
    archive = _bomb_zip(41 * 1024 * 1024)
    no_decompression()
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 400 and "at most 40 MB per photo" in response.content.decode()


def test_a_member_lying_about_its_size_never_expands_past_what_it_declared(staff_client, districts, media):
    import tracemalloc

    archive = _bomb_zip(30 * 1024 * 1024, lie_about_size=1000)
    tracemalloc.start()
    try:
        response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                     {"archive": archive, "representation_order": "2099"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 400 and "The archive is damaged (photos/a.jpg" in response.content.decode()
    assert peak < 10 * 1024 * 1024, peak  # the 30 MB were never produced
    assert SourcePhoto.objects.count() == 0


def test_photos_are_stored_without_comment_or_any_metadata():
    from PIL import ImageCms, PngImagePlugin

    image = Image.new("RGB", (64, 48), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010E] = "EXIF-SECRET"
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", comment=b"<html><script>COM-SECRET</script>", exif=exif.tobytes(),
               xmp=b"<x>XMP-SECRET</x>", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "PNG-SECRET")
    info.add_itxt("XML:com.adobe.xmp", "XMP-SECRET")
    png = io.BytesIO()
    image.save(png, "PNG", pnginfo=info, exif=exif.tobytes())
    for source in (jpeg.getvalue(), png.getvalue()):
        cleaned = clean_photo(source).content
        assert b"SECRET" not in cleaned and b"ICC_PROFILE" not in cleaned and b"iCCP" not in cleaned
        with Image.open(io.BytesIO(cleaned)) as reread:
            assert not ({"comment", "exif", "xmp", "icc_profile", "Comment"} & set(reread.info)), reread.info
            assert reread.size == (64, 48)
