"""The try-it box refuses a body over Django's upload limit with a JSON sentence the page shows."""

from __future__ import annotations

import json

from django.urls import reverse

from tests.factories import make_lineage


def test_a_body_over_the_upload_limit_gets_a_json_error(viewer_client, db, settings):
    tokenizer = make_lineage().dataset.tokenizer
    url = reverse("training:tokenizer_encode", args=[tokenizer.pk])
    body = json.dumps({"text": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 500_000)})
    response = viewer_client.post(url, body, content_type="application/json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert "the try-it box takes at most 2.6 MB" in response.json()["error"]
