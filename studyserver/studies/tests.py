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


@pytest.mark.django_db
def test_signed_entry_links_command_writes_links_that_the_study_accepts(tmp_path, client):
    import csv
    from urllib.parse import parse_qs, urlsplit

    from django.core.management import CommandError, call_command

    study = Study.objects.create(slug="signed", title="Signed", is_open=True, require_signed_entry=True)
    ids = tmp_path / "ids.txt"
    ids.write_text("P-1\nP 2/é\n\n", encoding="utf-8")
    out = tmp_path / "links.csv"
    call_command("signed_entry_links", study="signed", base_url="https://study.example.ca/", ids=str(ids), out=str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["panel_id"] for row in rows] == ["P-1", "P 2/é"]
    for row in rows:
        url = urlsplit(row["url"])
        assert url.scheme == "https" and url.netloc == "study.example.ca" and url.path == "/s/signed/"
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        assert query["pid"] == row["panel_id"] and study.entry_link_is_valid(query["pid"], query["sig"])
        assert client.get(f"{url.path}?{url.query}").status_code == 200  # the consent page
    with pytest.raises(CommandError, match="No study"):
        call_command("signed_entry_links", study="nope", base_url="https://x", ids=str(ids))
    with pytest.raises(CommandError, match="base-url"):
        call_command("signed_entry_links", study="signed", base_url="javascript:x", ids=str(ids))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("signed_entry_links", study="signed", base_url="https://x", ids=str(tmp_path / "missing.txt"))
