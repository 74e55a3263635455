from django.urls import path

from . import views

app_name = "survey"
urlpatterns = [
    path("", views.home, name="home"),
    path("s/<slug:slug>/", views.enter, name="enter"),
    path("take/<str:token>/", views.resume, name="resume"),
    path("take/<str:token>/screened-out/", views.screened_out, name="screened_out"),
    path("take/<str:token>/<str:step>/", views.step, name="step"),
    path("done/<str:kind>/", views.panel_exit, name="panel_exit"),
    path("healthz", views.healthz, name="healthz"),
]
