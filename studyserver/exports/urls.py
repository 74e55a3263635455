"""The research API, mounted at /api/ by the root URLconf."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

app_name = "exports"
urlpatterns = [
    path("studies/", views.StudyListView.as_view(), name="study-list"),
    path("studies/<slug:slug>/export.<str:fmt>", views.StudyExportView.as_view(), name="export"),
    path("studies/<slug:slug>/funnel", views.StudyFunnelView.as_view(), name="funnel"),
    path("studies/<slug:slug>/codebook", views.CodebookView.as_view(), name="codebook"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file: no inline script, so the CSP holds.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="exports:schema"), name="docs"),
]
