"""Downloads: streamed, right length and filename, HTTP Range resumes, only registered files."""

import os

import pytest
from django.urls import reverse

from models_registry.downloads import parse_range
from tests.factories import make_export_with_file, make_lineage

CONTENT = os.urandom(3 * (1 << 20) + 123)  # over several stream chunks


@pytest.fixture
def export(db):
    return make_export_with_file(make_lineage(), CONTENT)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_whole_file_with_length_and_filename(viewer_client, export):
    response = viewer_client.get(reverse("models_registry:download", args=[export.pk, "model.gguf"]))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Accept-Ranges"] == "bytes"
    # Named after the model, not model.gguf: two downloads never overwrite each other.
    expected = f'filename="hrgc-{export.run.name}-step{export.step}-{export.quant}.gguf"'
    assert expected in response["Content-Disposition"]
    assert _body(response) == CONTENT


def test_interrupted_download_resumes_with_range(viewer_client, export):
    url = reverse("models_registry:download", args=[export.pk, "model.gguf"])
    first = viewer_client.get(url)
    partial = next(iter(first.streaming_content))  # the connection "drops" after one chunk
    resumed = viewer_client.get(url, HTTP_RANGE=f"bytes={len(partial)}-", HTTP_IF_RANGE=first["ETag"])
    assert resumed.status_code == 206
    assert resumed["Content-Range"] == f"bytes {len(partial)}-{len(CONTENT) - 1}/{len(CONTENT)}"
    assert int(resumed["Content-Length"]) == len(CONTENT) - len(partial)
    assert partial + _body(resumed) == CONTENT


def test_changed_file_ignores_stale_if_range(viewer_client, export):
    url = reverse("models_registry:download", args=[export.pk, "model.gguf"])
    response = viewer_client.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"some-older-version"')
    assert response.status_code == 200
    assert _body(response) == CONTENT


def test_unsatisfiable_range(viewer_client, export):
    url = reverse("models_registry:download", args=[export.pk, "model.gguf"])
    response = viewer_client.get(url, HTTP_RANGE=f"bytes={len(CONTENT) + 5}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"


@pytest.mark.parametrize("name", ["../../secret_key", "Modelfile", "%2e%2e%2fsecret_key", "..%2F..%2Fsecret_key"])
def test_only_registered_files_are_served(viewer_client, export, name):
    response = viewer_client.get(f"/models/{export.pk}/download/{name}")
    assert response.status_code == 404


def test_anonymous_cannot_download(client, export):
    response = client.get(reverse("models_registry:download", args=[export.pk, "model.gguf"]))
    assert response.status_code == 302


def test_parse_range():
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=50-500", 100) == (50, 99)
    assert parse_range("bytes=200-", 100) == (-1, -1)
    assert parse_range("bytes=0-1,5-6", 100) is None


def test_the_modelfile_names_the_gguf_by_its_download_name(viewer_client, export):
    from pathlib import Path

    text = 'FROM ./model.gguf\nTEMPLATE """x"""\nPARAMETER top_k 40\n'
    (Path(export.path) / "Modelfile").write_text(text)
    export.files = [*export.files, {"name": "Modelfile", "size": len(text), "sha256": ""}]
    export.save()
    response = viewer_client.get(reverse("models_registry:download", args=[export.pk, "Modelfile"]))
    assert response.status_code == 200 and 'filename="Modelfile"' in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0] == f"FROM ./hrgc-{export.run.name}-step10-q8_0.gguf"
    assert lines[1:] == text.splitlines()[1:]


def test_the_model_page_names_the_runtimes_that_read_it(viewer_client, export):
    page = viewer_client.get(export.get_absolute_url())
    support = page.context["runtime_support"]
    assert "llama-cpp-python 0.3.36" in support["verified"]
    assert "Not verified" in support["ollama"] or "not run on this machine" in support["ollama"]
