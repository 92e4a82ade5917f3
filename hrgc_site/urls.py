"""Root URLs: one include per app, the site pages, auth and admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from hrgc_site import views
from hrgc_site.login import ThrottledLoginView

# Only the account views that need no mail: no mail is configured, so the password-reset views
# (unauthenticated, and they would tell whether an address has an account) are not mounted.
account_urls = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("system/", views.system, name="system"),
    path("system/check-workers/", views.check_workers, name="check_workers"),
    path("system/check-workers/<str:task_id>/", views.check_workers_result, name="check_workers_result"),
    path("accounts/", include(account_urls)),
    path("admin/", admin.site.urls),
    path("corpus/", include("corpus.urls")),
    path("", include("training.urls")),
    path("models/", include("models_registry.urls")),
    path("evaluation/", include("evaluation.urls")),
]
