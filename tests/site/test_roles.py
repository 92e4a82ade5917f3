"""Roles: viewers read, operators act; every page needs a login."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from hrgc_site.roles import OPERATORS, VIEWERS, is_operator


@pytest.fixture
def viewer(db):
    user = User.objects.create_user("vera", password="pw-viewer-1")
    user.groups.add(Group.objects.get(name=VIEWERS))
    return user


@pytest.fixture
def operator(db):
    user = User.objects.create_user("otto", password="pw-operator-1")
    user.groups.add(Group.objects.get(name=OPERATORS))
    return user


def test_migrate_creates_both_role_groups(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {OPERATORS, VIEWERS}


def test_operator_group_superuser_and_viewer(viewer, operator):
    admin = User.objects.create_superuser("root", password="pw-root-1")
    assert is_operator(operator)
    assert is_operator(admin)
    assert not is_operator(viewer)


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("system"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_viewer_reads_but_cannot_check_workers(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("system")).status_code == 200
    assert client.post(reverse("check_workers")).status_code == 403


def test_operator_can_enqueue_a_worker_check(client, operator):
    from django_q.models import OrmQ

    client.force_login(operator)
    response = client.post(reverse("check_workers"))
    assert response.status_code == 302
    assert "?check=" in response["Location"]
    assert OrmQ.objects.count() == 1


def test_post_without_csrf_token_is_refused(operator):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(reverse("check_workers")).status_code == 403
