import pytest

from studyserver.assignment.services import ensure_scheme
from studyserver.studies.models import Study


@pytest.mark.django_db
def test_the_study_list_links_to_the_study_pages(admin_client):
    study = Study.objects.create(slug="links", title="Links", is_open=True)
    scheme = ensure_scheme(study)
    page = admin_client.get("/admin/studies/study/").content.decode()
    assert "/s/links/?pid=TEST" in page and "?study=links" in page
    assert f"/admin/assignment/allocationscheme/{scheme.pk}/balance/" in page
    assert f"?study={study.pk}" in page
    for url in ("/admin/treatments/stimulus/coverage/?study=links", f"/admin/exports/datadownload/?study={study.pk}",
                f"/admin/assignment/allocationscheme/{scheme.pk}/balance/"):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/studies/study/add/").status_code == 200
    assert admin_client.get(f"/admin/studies/study/{study.pk}/change/").status_code == 200


@pytest.mark.parametrize("template", [
    "javascript:alert(document.cookie)//{pid}", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
    "//evil.example/{pid}", "vbscript:msgbox", " javascript:alert(1)", "https:///nohost",
])
def test_the_exit_redirect_is_never_script(template, settings):
    settings.PANEL_COMPLETE_URL = "https://panel.example/done?id={pid}"
    study = Study(slug="x", complete_url_template=template)
    assert study.exit_url("complete", "P 1") == "https://panel.example/done?id=P%201"
    settings.PANEL_COMPLETE_URL = "javascript:alert(1)"
    assert study.exit_url("complete", "P 1") == "/"


@pytest.mark.parametrize("template", ["https://panel.example/c?id={pid}", "http://panel.example/{pid}",
                                      "/done/complete/?pid={pid}"])
def test_http_and_relative_exit_urls_pass(template):
    assert Study(slug="x", complete_url_template=template).exit_url("complete", "A") == template.replace("{pid}", "A")


@pytest.mark.django_db
def test_each_study_gets_its_own_entry_secret():
    first, second = Study.objects.create(slug="a", title="A"), Study.objects.create(slug="b", title="B")
    assert len(first.entry_secret) == 64 and first.entry_secret != second.entry_secret
    assert first.entry_link_is_valid("P", "")  # not required: unsigned links work
    first.require_signed_entry = True
    assert first.entry_link_is_valid("P", first.entry_signature("P"))
    assert first.entry_link_is_valid("P", first.entry_signature("P").upper())
    assert not first.entry_link_is_valid("P", second.entry_signature("P"))
    assert not first.entry_link_is_valid("", first.entry_signature(""))
