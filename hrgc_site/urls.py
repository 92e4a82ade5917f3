"""Root URLs: one include per app, the site pages, auth and admin."""

from django.contrib import admin
from django.urls import include, path

from hrgc_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("system/", views.system, name="system"),
    path("system/check-workers/", views.check_workers, name="check_workers"),
    path("system/check-workers/<str:task_id>/", views.check_workers_result, name="check_workers_result"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("corpus/", include("corpus.urls")),
    path("", include("training.urls")),
    path("models/", include("models_registry.urls")),
]
