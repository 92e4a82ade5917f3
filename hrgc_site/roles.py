"""The two roles: viewers read everything; operators also start, stop, delete, fetch and curate.

Viewers make one kind of write: blind ratings of model outputs (a judgement, not an operation), listed in
VIEWER_WRITES; the access battery (tests/site/test_access.py) checks that no other action lets a viewer write."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

OPERATORS = "operators"
VIEWERS = "viewers"
# URL names of the only actions a viewer may use to change the database.
VIEWER_WRITES = ("evaluation:rate",)


def is_operator(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_hrgc_is_operator", None)
    if cached is None:
        cached = user.groups.filter(name=OPERATORS).exists()
        user._hrgc_is_operator = cached
    return cached


def ensure_groups() -> None:
    for name in (OPERATORS, VIEWERS):
        Group.objects.get_or_create(name=name)


def operator_required(view):
    """Function views: 403 unless the user is an operator (login is already enforced globally)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_operator(request.user):
            raise PermissionDenied("Operators only: ask an administrator to add you to the operators group.")
        return view(request, *args, **kwargs)

    return wrapper


class OperatorRequiredMixin:
    """Class-based views: 403 unless the user is an operator."""

    def dispatch(self, request, *args, **kwargs):
        if not is_operator(request.user):
            raise PermissionDenied("Operators only: ask an administrator to add you to the operators group.")
        return super().dispatch(request, *args, **kwargs)


def role_context(request) -> dict:
    user = getattr(request, "user", None)
    return {"is_operator": bool(user) and is_operator(user)}
