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
