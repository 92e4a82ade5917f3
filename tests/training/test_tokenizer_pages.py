"""Tokenizer pages: train from the form, live status, too-large vocabulary and retry, try-it box, files, roles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from hrgc_site.models import JobStatus
from tests.static_files import page_script
from tests.training.data_fixtures import GO, make_snapshot
from tests.training.support import TRACEBACK
from training.models import DatasetBuild, TokenizerVersion
from training.services import tokenizers
from training.tasks.tokenizers import train_tokenizer_task
from training.tokenizer import Tokenizer

# Tasks run the way the worker runs them (run_job), which manages its own connections: no wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def snapshot(data_dir):
    return make_snapshot(data_dir)


@pytest.fixture
def trained(snapshot):
    tokenizer = tokenizers.create_tokenizer(snapshot=snapshot, name="tok-400", vocab_size=400, enqueue_task=False)
    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FINISHED
    tokenizer.refresh_from_db()
    return tokenizer


def test_operator_trains_a_tokenizer_from_the_form(operator_client, snapshot, django_capture_on_commit_callbacks):
    page = operator_client.get(reverse("training:tokenizers"))
    assert b'id="tokenizer-form"' in page.content and snapshot.name.encode() in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse("training:tokenizers"), {"snapshot": snapshot.pk, "name": "tok-a", "vocab_size": 400}
        )
    tokenizer = TokenizerVersion.objects.get(name="tok-a")
    assert response.status_code == 302 and response["Location"] == tokenizer.get_absolute_url()
    assert tokenizer.status == JobStatus.QUEUED and tokenizer.task_id
    queued = [task for task in OrmQ.objects.all() if task.task_id() == tokenizer.task_id]
    assert queued and queued[0].func() == "training.tasks.tokenizers.train_tokenizer_task"
    assert queued[0].task["args"] == (tokenizer.pk,)

    card = operator_client.get(reverse("training:tokenizer_status", args=[tokenizer.pk])).content.decode()
    assert 'id="job-status">queued<' in card and 'data-active="1"' in card

    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FINISHED
    tokenizer.refresh_from_db()
    assert Path(tokenizer.model_path).parent == tokenizer.directory
    assert Path(tokenizer.model_path).is_file() and Path(tokenizer.vocab_path).is_file()
    assert tokenizer.chars_per_token_code > 1 and tokenizer.chars_per_token_prose > 1
    assert tokenizer.training_seconds > 0 and tokenizer.trained_chars == snapshot.chars

    tokenizer.refresh_from_db()
    assert tokenizer.progress == 1.0
    card = operator_client.get(reverse("training:tokenizer_status", args=[tokenizer.pk])).content.decode()
    assert 'id="job-status">finished<' in card and 'data-active="0"' in card
    detail = operator_client.get(tokenizer.get_absolute_url()).content.decode()
    assert '<dd id="vocab-size">400</dd>' in detail
    assert f'<dd id="cpt-code">{tokenizer.chars_per_token_code:.2f}</dd>' in detail
    assert snapshot.get_absolute_url() in detail and 'id="encode-form"' in detail
    listing = operator_client.get(reverse("training:tokenizers")).content.decode()
    assert "tok-a" in listing and "badge finished" in listing


def test_form_rejects_bad_input_and_unfinished_snapshots(operator_client, snapshot):
    snapshot.status = JobStatus.RUNNING
    snapshot.save()
    response = operator_client.post(
        reverse("training:tokenizers"), {"snapshot": snapshot.pk, "name": "bad name!", "vocab_size": 10}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"snapshot", "name", "vocab_size"}
    assert not TokenizerVersion.objects.exists()
    negative = operator_client.post(reverse("training:tokenizers"), {"snapshot": snapshot.pk, "vocab_size": -5})
    assert negative.context["form"].errors["vocab_size"] == ["Ensure this value is greater than or equal to 300."]


def test_too_large_vocabulary_fails_with_the_size_that_works_and_retries(operator_client, snapshot):
    tokenizer = tokenizers.create_tokenizer(snapshot=snapshot, name="too-big", vocab_size=50_000, enqueue_task=False)
    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FAILED
    tokenizer.refresh_from_db()
    works = tokenizer.suggested_vocab_size
    assert works and 400 < works < 50_000
    assert tokenizer.message == (
        f"vocabulary size 50000 is larger than this corpus supports; the largest size that works is {works}"
    )
    card = operator_client.get(reverse("training:tokenizer_status", args=[tokenizer.pk])).content.decode()
    assert 'id="job-status">failed<' in card and f"the largest size that works is {works}</p>" in card
    page = operator_client.get(tokenizer.get_absolute_url()).content.decode()
    assert f"the largest size that works is {works}" in page
    assert f'name="vocab_size" id="retry-vocab" value="{works}"' in page

    response = operator_client.post(reverse("training:tokenizer_retry", args=[tokenizer.pk]), {"vocab_size": works})
    assert response.status_code == 302
    tokenizer.refresh_from_db()
    assert (tokenizer.status, tokenizer.vocab_size, tokenizer.suggested_vocab_size) == ("queued", works, None)
    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FINISHED
    tokenizer.refresh_from_db()
    assert Tokenizer(tokenizer.model_path).vocab_size == works
    # A finished version cannot be "retried" over its files.
    response = operator_client.post(
        reverse("training:tokenizer_retry", args=[tokenizer.pk]), {"vocab_size": 500}, follow=True
    )
    assert "only a failed one can be retried" in response.content.decode()


def test_encode_endpoint_round_trips_code_and_marks_special_tokens(viewer_client, trained):
    url = reverse("training:tokenizer_encode", args=[trained.pk])
    source = (GO / "unicode_literals.go").read_text(encoding="utf-8")
    text = "<PLAN>\n<STEP> <INTENT:FIX> guard nil\n</PLAN>\n" + source + "\t  \r\n\u2581 odd ✓"
    data = viewer_client.post(url, json.dumps({"text": text}), content_type="application/json").json()
    model = Tokenizer(trained.model_path)
    assert data["round_trip"] is True and model.decode(data["ids"]) == text
    assert data["count"] == len(data["ids"]) == len(data["tokens"]) and data["chars"] == len(text)
    assert "".join(token["text"] for token in data["tokens"]) == text
    specials = [token for token in data["tokens"] if token["special"]]
    assert [token["piece"] for token in specials[:4]] == ["<PLAN>", "<STEP>", "<INTENT:FIX>", "</PLAN>"]
    assert all(token["id"] == model.special_ids[token["piece"]] for token in specials)
    assert any(token["byte"] for token in data["tokens"])  # ✓ and ▁ are not in a 400-piece vocabulary

    assert viewer_client.get(url, {"text": "func main() {}"}).json()["round_trip"] is True
    form = viewer_client.post(url, {"text": "x := 1"}).json()
    assert model.decode(form["ids"]) == "x := 1"
    too_long = viewer_client.post(url, json.dumps({"text": "a" * 20_001}), content_type="application/json")
    assert too_long.status_code == 400 and "at most 20,000 characters" in too_long.json()["error"]
    bad = viewer_client.post(url, "not json", content_type="application/json")
    assert bad.status_code == 400


def test_encode_refuses_an_unfinished_tokenizer(operator_client, snapshot):
    tokenizer = tokenizers.create_tokenizer(snapshot=snapshot, name="later", vocab_size=400, enqueue_task=False)
    response = operator_client.get(reverse("training:tokenizer_encode", args=[tokenizer.pk]), {"text": "x"})
    assert response.status_code == 409 and "no trained model" in response.json()["error"]


def test_downloads_serve_only_the_registered_files(viewer_client, trained):
    for kind in ("model", "vocab"):
        response = viewer_client.get(reverse("training:tokenizer_download", args=[trained.pk, kind]))
        assert response.status_code == 200
        assert response["Content-Disposition"] == f'attachment; filename="tok-400.{kind}"'
        assert b"".join(response.streaming_content) == Path(getattr(trained, f"{kind}_path")).read_bytes()
    vocab_lines = Path(trained.vocab_path).read_text(encoding="utf-8").splitlines()
    assert len(vocab_lines) == 400 and vocab_lines[0].startswith("<pad>\t")
    assert viewer_client.get(reverse("training:tokenizer_download", args=[trained.pk, "meta"])).status_code == 404
    Path(trained.vocab_path).unlink()
    assert viewer_client.get(reverse("training:tokenizer_download", args=[trained.pk, "vocab"])).status_code == 404


def test_delete_is_refused_while_a_dataset_uses_it(operator_client, trained):
    dataset = DatasetBuild.objects.create(name="uses-it", snapshot=trained.snapshot, tokenizer=trained)
    url = reverse("training:tokenizer_delete", args=[trained.pk])
    page = operator_client.post(url, follow=True).content.decode()
    assert "is used by dataset(s) uses-it" in page
    assert TokenizerVersion.objects.filter(pk=trained.pk).exists() and trained.directory.exists()
    dataset.delete()
    response = operator_client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("training:tokenizers")
    assert not TokenizerVersion.objects.filter(pk=trained.pk).exists() and not trained.directory.exists()


def test_viewers_are_refused_every_change(viewer_client, trained):
    listing = viewer_client.get(reverse("training:tokenizers"))
    assert listing.status_code == 200 and b"tokenizer-form" not in listing.content
    assert b"delete-button" not in viewer_client.get(trained.get_absolute_url()).content
    assert (
        viewer_client.post(
            reverse("training:tokenizers"), {"snapshot": trained.snapshot_id, "name": "v", "vocab_size": 400}
        ).status_code
        == 403
    )
    assert (
        viewer_client.post(reverse("training:tokenizer_retry", args=[trained.pk]), {"vocab_size": 400}).status_code
        == 403
    )
    assert viewer_client.post(reverse("training:tokenizer_delete", args=[trained.pk])).status_code == 403
    assert TokenizerVersion.objects.count() == 1


def test_a_version_whose_worker_died_can_be_retried_and_bad_sizes_are_refused(operator_client, snapshot):
    from datetime import timedelta

    from django.utils import timezone

    tokenizer = tokenizers.create_tokenizer(snapshot=snapshot, name="orphan", vocab_size=400, enqueue_task=False)
    long_ago = timezone.now() - timedelta(minutes=10)
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(
        status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    url = reverse("training:tokenizer_retry", args=[tokenizer.pk])
    assert 'id="retry-button"' in operator_client.get(tokenizer.get_absolute_url()).content.decode()
    response = operator_client.post(url, {"vocab_size": 10})
    assert response.status_code == 400 and b"greater than or equal to 300" in response.content
    assert operator_client.post(url, {"vocab_size": 420}).status_code == 302
    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FINISHED
    tokenizer.refresh_from_db()
    assert tokenizer.vocab_size == 420 and Tokenizer(tokenizer.model_path).vocab_size == 420


def test_failed_tokenizer_and_dataset_cards_fold_the_traceback(viewer_client, dataset):
    tokenizer, snapshot = dataset.tokenizer, dataset.snapshot
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(status=JobStatus.FAILED, message=TRACEBACK)
    failed = DatasetBuild.objects.create(
        name="ds-failed", snapshot=snapshot, tokenizer=tokenizer, status=JobStatus.FAILED, message=TRACEBACK
    )
    for url in (tokenizer.get_absolute_url(), failed.get_absolute_url()):
        page = viewer_client.get(url).content.decode()
        message = re.search(r'id="job-message"[^>]*>(.*?)</p>', page, re.S).group(1)
        assert message == "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
        assert '<details id="job-traceback"' in page and "Traceback (most recent call last)" in page


def test_retry_with_a_bad_size_shows_the_tokenizer_page_with_the_error(operator_client, dataset):
    tokenizer = dataset.tokenizer
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(
        status=JobStatus.FAILED, message="too large", suggested_vocab_size=4937
    )
    page = operator_client.get(tokenizer.get_absolute_url()).content.decode()
    assert "Retry with 4,937 pieces" in page
    assert 'input.addEventListener("input", label)' in page_script(page, "js/tokenizer_detail.js")
    response = operator_client.post(reverse("training:tokenizer_retry", args=[tokenizer.pk]), {"vocab_size": "5"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"Tokenizer {tokenizer.name}" in page and 'id="retry-errors"' in page
    assert "greater than or equal to 300" in page and 'id="retry-vocab" value="5"' in page
    tokenizer.refresh_from_db()
    assert tokenizer.status == JobStatus.FAILED
