"""The participant image URL and the staff pages: review queue, coverage board, bulk zip upload."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.urls import reverse

from studyserver.studies.models import Study
from studyserver.treatments.models import SourcePhoto, Stimulus

from .conftest import jpeg_bytes, png_bytes

GENERATED = Stimulus.Status.GENERATED


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("curator", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_approved_image_is_served_with_cache_headers(client, districts, make_stimulus):
    stimulus = make_stimulus("house", districts[0])
    response = client.get(stimulus.image_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"] and "max-age" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == stimulus.result.open("rb").read()
    again = client.get(stimulus.image_url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


@pytest.mark.parametrize("status", ["queued", "generated", "rejected", "failed"])
def test_unapproved_image_is_404(client, districts, make_stimulus, status):
    stimulus = make_stimulus("house", districts[0], status=status)
    assert client.get(f"/stimuli/{stimulus.public_id}.jpg").status_code == 404


def test_ids_are_not_guessable(client, districts, make_stimulus):
    stimulus = make_stimulus("house", districts[0])
    for guess in (str(stimulus.pk), f"{stimulus.pk:016d}", "0" * 22, stimulus.public_id[:-1] + "A"):
        if guess != stimulus.public_id:
            assert client.get(f"/stimuli/{guess}.jpg").status_code == 404
    assert client.get(f"/stimuli/{stimulus.public_id}.png").status_code == 404


def test_image_serving_notes_exposure(client, districts, make_stimulus, monkeypatch):
    seen = []
    monkeypatch.setattr("studyserver.survey.exposure.note_image_served", lambda request, sid: seen.append(sid))
    stimulus = make_stimulus("house", districts[0])
    client.get(stimulus.image_url)
    assert seen == [stimulus.public_id]


def test_staff_pages_need_staff(client, django_user_model):
    user = django_user_model.objects.create_user("participantish", password="pw")
    client.force_login(user)
    for name in ("admin:treatments_review_queue", "admin:treatments_coverage", "admin:treatments_bulk_upload",
                 "admin:treatments_streetview"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_review_queue_warns_about_test_weights(staff_client, districts, make_stimulus, settings):
    made = make_stimulus("house", districts[0], status=GENERATED, seed=1)
    Stimulus.objects.filter(pk=made.pk).update(backend="reference-sim-tiny")
    settings.GENERATOR_MASKER_CHECKPOINT = settings.GENERATOR_PAINTER_CHECKPOINT = ""
    page = staff_client.get(reverse("admin:treatments_review_queue")).content.decode()
    assert "No trained weights are configured" in page and "(test weights)" in page
    settings.GENERATOR_MASKER_CHECKPOINT, settings.GENERATOR_PAINTER_CHECKPOINT = "m.pt", "p.pt"
    assert "No trained weights are configured" not in staff_client.get(reverse("admin:treatments_review_queue")).content.decode()


def test_review_queue_cards_read_as_a_researcher_expects(staff_client, districts, make_stimulus):
    from datetime import timedelta

    from django.utils import timezone

    url = reverse("admin:treatments_review_queue")
    first = make_stimulus("house", districts[0], status=GENERATED, seed=1)
    assert "1 generated stimulus waiting for review" in staff_client.get(url).content.decode()
    second = make_stimulus("district_landmark", districts[0], status=GENERATED, seed=2)
    distant = make_stimulus("distant", status=GENERATED, seed=3)
    Stimulus.objects.filter(pk=distant.pk).update(backend="photo", model_version="")
    # The second one finished last (a batch, a retry): the cards keep the order they were queued in.
    Stimulus.objects.filter(pk=second.pk).update(generated_at=timezone.now() + timedelta(minutes=5))
    page = staff_client.get(url).content.decode()
    assert "3 generated stimuli waiting for review, in the order they were queued" in page
    assert page.index(f'id="stimulus-{first.pk}"') < page.index(f'id="stimulus-{second.pk}"') < page.index(
        f'id="stimulus-{distant.pk}"')
    card = page[page.index(f'id="stimulus-{distant.pk}"'):]
    assert "Shown as is: the photograph itself, no flood generated" in card and "model <code></code>" not in card
    assert "Backend <code>reference</code>" in page  # the generated ones keep their provenance


def test_review_queue_approve_reject_regenerate(staff_client, districts, make_stimulus):
    first = make_stimulus("house", districts[0], status=GENERATED, seed=1)
    second = make_stimulus("district_landmark", districts[0], status=GENERATED, seed=2)
    third = make_stimulus("provincial_landmark", None, "QC", status=GENERATED, seed=3)
    url = reverse("admin:treatments_review_queue")
    page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for stimulus in (first, second, third):
        for which in ("source", "mask", "result"):
            assert reverse("admin:treatments_stimulus_file", args=[stimulus.pk, which]) in html
    assert staff_client.get(reverse("admin:treatments_stimulus_file", args=[first.pk, "mask"])).status_code == 200

    staff_client.post(url, {"stimulus": first.pk, "action": "approve", "note": "good"})
    staff_client.post(url, {"stimulus": second.pk, "action": "reject", "note": "bad"})
    staff_client.post(url, {"stimulus": third.pk, "action": "regenerate", "note": "new seed"})
    for stimulus in (first, second, third):
        stimulus.refresh_from_db()
    assert (first.status, second.status, third.status) == ("approved", "rejected", "rejected")
    replacement = Stimulus.objects.filter(source=third.source).exclude(pk=third.pk).get()
    assert replacement.seed == 4 and replacement.status in ("queued", "generated", "failed")
    assert first.review_events.get().actor.username == "curator"
    assert list(third.review_events.values_list("action", flat=True)) == ["regenerate"]


def test_coverage_board_headline(staff_client, districts, make_stimulus):
    Study.objects.create(slug="cov", title="Coverage", representation_order="2099", demo=False)
    url = reverse("admin:treatments_coverage") + "?study=cov"
    assert "cannot open yet" in staff_client.get(url).content.decode()
    for district in districts:
        make_stimulus("house", district, seed=1)
        make_stimulus("district_landmark", district, seed=2)
    make_stimulus("provincial_landmark", None, "QC", seed=3)
    make_stimulus("provincial_landmark", None, "ON", seed=4)
    make_stimulus("distant", seed=5, status=GENERATED)
    page = staff_client.get(url).content.decode()
    assert "3 of 3 districts in scope" in page and "cannot open yet" in page
    Stimulus.objects.filter(source__kind="distant").update(status="approved")
    assert "Images are complete for the scope" in staff_client.get(url).content.decode()


def test_coverage_board_follows_the_study_scope(staff_client, districts, make_stimulus):
    """A pilot in one province needs material for that province's districts only."""
    quebec, montreal, ajax = districts
    Study.objects.create(slug="pilot", title="Pilot", representation_order="2099", scope="provinces",
                         scope_provinces="ON")
    url = reverse("admin:treatments_coverage") + "?study=pilot"
    page = staff_client.get(url).content.decode()
    assert "1 of 1 districts in scope (provinces ON" in page and "Abitibi" not in page
    make_stimulus("house", ajax, seed=1)
    make_stimulus("district_landmark", ajax, seed=2)
    make_stimulus("provincial_landmark", None, "ON", seed=3)
    make_stimulus("distant", seed=4)
    assert "Images are complete for the scope" in staff_client.get(url).content.decode()


def make_zip(rows: list[str], files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("manifest.csv", "filename,kind,fed_code,province_code,place_name_en,place_name_fr\n"
                        + "\n".join(rows) + "\n")
        for name, data in files.items():
            bundle.writestr(f"photos/{name}", data)
    buffer.seek(0)
    buffer.name = "sources.zip"
    return buffer


def test_bulk_upload_reports_bad_rows_and_imports_nothing(staff_client, districts, media):
    archive = make_zip(
        [
            "a.png,house,24001,,Abitibi,Abitibi",
            "b.png,house,99999,,Nowhere,",             # unknown district
            "c.png,provincial_landmark,,QC,Château Frontenac,Château Frontenac",
            "missing.png,district_landmark,24002,,Ahuntsic,",  # no such file
            "d.png,bridge,,,Somewhere,",                # unknown kind
            "e.png,distant,,,Bangladesh,",              # not an image
        ],
        {"a.png": png_bytes(1), "b.png": png_bytes(2), "c.png": jpeg_bytes(3), "d.png": png_bytes(4),
         "e.png": b"not an image"},
    )
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 400
    report = response.context["report"]
    rows = {(e.row, e.filename): e.message for e in report.errors}
    assert set(rows) == {(3, "b.png"), (5, "missing.png"), (6, "d.png"), (7, "e.png")}
    assert "99999" in rows[(3, "b.png")] and "not found" in rows[(5, "missing.png")]
    assert "unknown kind" in rows[(6, "d.png")] and "not a readable image" in rows[(7, "e.png")]
    html = response.content.decode()
    assert "row-error" in html and "missing.png" in html
    assert SourcePhoto.objects.count() == 0


def test_bulk_upload_imports_a_clean_manifest(staff_client, districts, media):
    archive = make_zip(
        ["a.png,house,24001,,Abitibi,Abitibi", "c.png,provincial_landmark,,qc,Château Frontenac,",
         "e.jpg,distant,,,Bangladesh,Bangladesh"],
        {"a.png": png_bytes(1), "c.png": png_bytes(3), "e.jpg": jpeg_bytes(5)},
    )
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 302
    sources = {s.kind: s for s in SourcePhoto.objects.all()}
    assert set(sources) == {"house", "provincial_landmark", "distant"}
    assert sources["house"].district == districts[0] and sources["house"].province_code == "QC"
    assert sources["provincial_landmark"].province_code == "QC"
    assert all(s.origin == "bulk" and s.uploaded_by.username == "curator" for s in sources.values())
    assert Stimulus.objects.count() == 0  # "generate" was not ticked


def test_bulk_upload_rejects_non_zip(staff_client, db):
    upload = io.BytesIO(b"plain text")
    upload.name = "x.zip"
    # 2013: a valid choice whether or not another test committed the 2013 reference districts.
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": upload, "representation_order": "2013"})
    assert response.status_code == 400 and "not a readable .zip" in response.content.decode()


def test_admin_pages_render_and_flag_demo_material(staff_client, districts, make_stimulus, make_source):
    demo = make_stimulus("house", districts[0], is_demo=True)
    for url in (reverse("admin:treatments_stimulus_changelist"), reverse("admin:treatments_sourcephoto_changelist"),
                reverse("admin:treatments_sourcephoto_add"), reverse("admin:treatments_bulk_upload"),
                reverse("admin:treatments_streetview")):
        assert staff_client.get(url).status_code == 200, url
    page = staff_client.get(reverse("admin:treatments_stimulus_change", args=[demo.pk])).content.decode()
    assert "DEMO material" in page and reverse("admin:treatments_stimulus_file", args=[demo.pk, "result"]) in page
    page = staff_client.get(reverse("admin:treatments_sourcephoto_change", args=[demo.source.pk])).content.decode()
    assert "DEMO material" in page


def test_admin_upload_of_a_single_source(staff_client, districts, media, monkeypatch, django_capture_on_commit_callbacks):
    queued: list = []
    monkeypatch.setattr("studyserver.treatments.services.send_generation_task", lambda pk, countdown=None: queued.append(pk))
    page = staff_client.get(reverse("admin:treatments_sourcephoto_add")).content.decode()
    assert "The caption reads “A flood in” followed by this name" in page and "Riding code" in page
    image = io.BytesIO(png_bytes(9))
    image.name = "house.png"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:treatments_sourcephoto_add"), {
            "kind": "house", "representation_order": "2099", "fed_code": "35001", "province_code": "",
            "place_name_en": "Ajax", "place_name_fr": "Ajax", "image": image, "credit": "me", "generate": "on",
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    source = SourcePhoto.objects.get()
    assert source.origin == "upload" and source.uploaded_by.username == "curator" and source.province_code == "ON"
    assert source.district == districts[2]
    stimulus = Stimulus.objects.get(source=source)
    assert stimulus.status == "queued" and queued == [stimulus.pk]  # generation queued, as the box said
    bad = io.BytesIO(png_bytes(9))
    bad.name = "landmark.png"
    response = staff_client.post(reverse("admin:treatments_sourcephoto_add"), {
        "kind": "provincial_landmark", "representation_order": "2099", "fed_code": "35001", "province_code": "ON",
        "place_name_en": "CN Tower", "image": bad,
    })
    assert response.status_code == 200 and "Only house and district landmark photos" in response.content.decode()


def test_a_validation_error_keeps_the_chosen_photo(staff_client, districts, media):
    image = io.BytesIO(png_bytes(3))
    image.name = "church.png"
    url = reverse("admin:treatments_sourcephoto_add")
    response = staff_client.post(url, {"kind": "district_landmark", "representation_order": "2099",
                                       "fed_code": "9", "place_name_en": "St. Mary's", "image": image})
    page = response.content.decode()
    assert response.status_code == 200 and "No district 9 in the 2099 representation order" in page
    assert "church.png is kept from this try" in page
    pending = re.search(r'name="pending_image" value="([^"]+)"', page).group(1)
    response = staff_client.post(url, {"kind": "district_landmark", "representation_order": "2099",
                                       "fed_code": "24001", "place_name_en": "St. Mary's",
                                       "pending_image": pending})
    assert response.status_code == 302, response.content.decode()[:3000]
    source = SourcePhoto.objects.get()
    assert source.image.read() == png_bytes(3) and source.district == districts[0]
    # A forged or stale pending name is ignored: the form asks for the file again.
    response = staff_client.post(url, {"kind": "distant", "representation_order": "2099",
                                       "place_name_en": "Sylhet", "pending_image": "../../etc/passwd"})
    assert response.status_code == 200 and "Choose the photo file." in response.content.decode()


def test_photo_forms_default_to_the_studys_order_and_refuse_one_no_study_uses(staff_client, media):
    from studyserver.geo.models import District

    # Like New Brunswick's 13001 in 2013 and 2023: one code, two ridings (made-up orders: the
    # reference ones may be committed by another test).
    for order, name in (("2098", "Acadie—Bathurst"), ("2099", "Acadie—Bathurst (later)")):
        District.objects.create(representation_order=order, fed_code="13001", name_en=name, name_fr=name,
                                province_code="NB")
    Study.objects.create(slug="comparison", title="Comparison", representation_order="2098")
    for url in (reverse("admin:treatments_bulk_upload"), reverse("admin:treatments_sourcephoto_add"),
                reverse("admin:treatments_streetview")):
        context = staff_client.get(url).context
        form = context["adminform"].form if "adminform" in context else context["form"]
        assert form["representation_order"].value() == "2098", url  # the study's, not the other

    archive = make_zip(["a.png,house,13001,,Bathurst,Bathurst"], {"a.png": png_bytes(1)})
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2099"})
    assert response.status_code == 400 and "No study uses the 2099 representation order" in response.content.decode()
    image = io.BytesIO(png_bytes(2))
    image.name = "house.png"
    response = staff_client.post(reverse("admin:treatments_sourcephoto_add"), {
        "kind": "house", "representation_order": "2099", "fed_code": "13001", "province_code": "",
        "place_name_en": "Bathurst", "place_name_fr": "Bathurst", "image": image, "credit": "me"})
    assert response.status_code == 200 and "No study uses the 2099 representation order" in response.content.decode()
    assert not SourcePhoto.objects.exists()

    archive = make_zip(["a.png,house,13001,,Bathurst,Bathurst"], {"a.png": png_bytes(1)})
    response = staff_client.post(reverse("admin:treatments_bulk_upload"),
                                 {"archive": archive, "representation_order": "2098"})
    assert response.status_code == 302
    assert SourcePhoto.objects.get().district.representation_order == "2098"
