"""Login with throttling: after too many failed attempts for one user name from one address (or from one
address overall) within a window, further attempts are refused with 429 without checking the password.

The counters live in the shared database cache, so every web process sees the same numbers."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.shortcuts import render


def client_address(request) -> str:
    """The client's address; behind a proxy (HRGC_BEHIND_PROXY) the one the proxy appended last."""
    if settings.HRGC_BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def _keys(request, username: str) -> list[tuple[str, int]]:
    address = client_address(request)
    pair = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()
    return [
        (f"hrgc-login-fail:pair:{pair}", settings.HRGC_LOGIN_MAX_FAILURES),
        (
            f"hrgc-login-fail:addr:{hashlib.sha256(address.encode()).hexdigest()}",
            settings.HRGC_LOGIN_MAX_FAILURES_PER_ADDRESS,
        ),
    ]


def locked_out(request, username: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(request, username))


def record_failure(request, username: str) -> None:
    for key, _ in _keys(request, username):
        if cache.add(key, 1, settings.HRGC_LOGIN_WINDOW_SECONDS):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.HRGC_LOGIN_WINDOW_SECONDS)


def clear_failures(request, username: str) -> None:
    cache.delete(_keys(request, username)[0][0])


class ThrottledLoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if locked_out(request, username):
            minutes = max(1, settings.HRGC_LOGIN_WINDOW_SECONDS // 60)
            context = self.get_context_data(form=self.form_class(request), throttled=True, throttle_minutes=minutes)
            return render(request, self.template_name, context, status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            clear_failures(request, username)
        else:
            record_failure(request, username)
        return response
