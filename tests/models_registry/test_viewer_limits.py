"""A viewer cannot start unbounded work in the web process: the playground takes a bounded number of
generations at once, on a bounded number of threads, for a bounded time, with bounded prompts."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from models_registry import services
from models_registry.models import ExportedModel
from tests.factories import make_lineage

# Closing a response ends its request (the connection may be closed): no wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def export(transactional_db):
    # A finished GGUF export row without its file: the stream says so, which is all these limits need.
    return ExportedModel.objects.create(run=make_lineage("pg"), step=1, format="gguf", quant="f16", status="finished")


def _form(export, **changes) -> dict:
    data = {
        "model": export.pk,
        "title": "Fix nil pointer",
        "body": "",
        "code_before": "func f() {}\n",
        "path": "main.go",
        "max_iterations": 1,
        "max_code_tokens": 16,
        "temperature": 0,
        "seed": 1,
    }
    return {**data, **changes}


def _events(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_generations_beyond_the_concurrency_limit_are_refused_until_one_ends(viewer_client, export):
    url = reverse("models_registry:playground_generate")
    held = [services.start_playground(**_cleaned(export)) for _ in range(services.PLAYGROUND_CONCURRENCY)]
    try:
        busy = viewer_client.post(url, _form(export))
        assert busy.status_code == 429 and "busy" in busy.json()["errors"]["playground"][0]
    finally:
        for generation in held:
            generation.close()
    answer = viewer_client.post(url, _form(export))
    assert answer.status_code == 200
    events = _events(answer)
    assert events[-1]["type"] == "error" and "no GGUF file" in events[-1]["message"]
    answer.close()
    # A response closed before it was read gives its slot back too (the browser went away).
    for _ in range(services.PLAYGROUND_CONCURRENCY + 1):
        viewer_client.post(url, _form(export)).close()
    last = viewer_client.post(url, _form(export))
    assert last.status_code == 200
    last.close()


def _cleaned(export) -> dict:
    from models_registry.forms import PlaygroundForm

    form = PlaygroundForm(_form(export))
    assert form.is_valid(), form.errors
    return form.cleaned_data


def test_prompts_are_bounded(viewer_client, export):
    url = reverse("models_registry:playground_generate")
    answer = viewer_client.post(url, _form(export, code_before="x" * 20_001))
    assert answer.status_code == 400 and "code_before" in answer.json()["errors"]
    answer = viewer_client.post(url, _form(export, body="x" * 4_001, max_code_tokens=100_000))
    errors = answer.json()["errors"]
    assert answer.status_code == 400 and {"body", "max_code_tokens"} <= set(errors)


def test_a_generation_stops_at_the_time_limit_and_gives_its_slot_back():
    def forever():
        while True:
            yield {"type": "token", "text": "x"}

    before = services._slots._value
    assert services._slots.acquire(blocking=False)
    generation = services.Generation(forever(), seconds=0.0, slot=services._slots)
    events = list(generation)
    assert events[0]["type"] == "token" and events[-1]["type"] == "error" and "limit" in events[-1]["message"]
    assert len(events) == 2 and services._slots._value == before
