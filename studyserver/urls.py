"""URL map: the participant flow at the root, researchers in /admin, scripts in /api."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Floodlight research admin"
admin.site.site_title = "Floodlight"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("studyserver.exports.urls")),
    path("stimuli/", include("studyserver.treatments.urls")),
    path("", include("studyserver.survey.urls")),
]

handler400 = "studyserver.survey.views.bad_request"
handler403 = "studyserver.survey.views.forbidden"
handler404 = "studyserver.survey.views.not_found"
handler500 = "studyserver.survey.views.server_error"
