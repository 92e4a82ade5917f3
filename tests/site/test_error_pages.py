"""Errors keep the dashboard's layout and say what to do; list pages forgive odd page numbers."""

from django.test import Client
from django.urls import reverse


def test_missing_object_page_has_navigation_and_the_reason(operator_client):
    response = operator_client.get("/runs/987654/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Back to the pipeline" in body and "header" in body and "/runs/987654/" in body


def test_viewer_refusal_explains_the_roles(viewer_client):
    response = viewer_client.post(reverse("check_workers"))
    assert response.status_code == 403
    assert "operators" in response.content.decode()


def test_refused_csrf_explains_itself(operator_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post(reverse("check_workers"))
    assert response.status_code == 403 and "Reload the page" in response.content.decode()


def test_odd_page_numbers_show_a_real_page(operator_client):
    for page in ("abc", "0", "-1", "99"):
        response = operator_client.get(reverse("models_registry:models"), {"page": page})
        assert response.status_code == 200, page
