"""Run pages and actions: permissions, the incremental JSON feed, downsampling, dead workers, stop/resume/clone/
delete, compare."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from hrgc_site.jobs import enqueue
from hrgc_site.models import JobStatus
from tests.training.support import FAST, TRACEBACK, tiny_run
from training.models import MetricPoint, TrainingRun
from training.services.runs import (
    OVERVIEW_POINTS,
    create_run,
    differing_hyperparameters,
    downsample,
    metric_series,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def new_run(dataset, name="run-a", **overrides):
    return create_run(
        dataset=dataset, family="hrm", preset_name="tiny", name=name, overrides={**FAST, **overrides}, queue=False
    )


def add_points(run, kind, steps, **values):
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(
                run=run,
                kind=kind,
                step=s,
                tokens=s * 256,
                elapsed=s * 0.1,
                values={key: (fn(s) if callable(fn) else fn) for key, fn in values.items()},
            )
            for s in steps
        ]
    )


def test_viewers_read_but_cannot_act(viewer_client, dataset):
    run = new_run(dataset)
    assert viewer_client.get(reverse("training:runs")).status_code == 200
    page = viewer_client.get(run.get_absolute_url())
    assert page.status_code == 200 and b'id="stop-run"' not in page.content
    assert viewer_client.get(reverse("training:run_metrics", args=[run.pk])).status_code == 200
    assert viewer_client.get(reverse("training:run_new")).status_code == 403
    assert viewer_client.get(reverse("training:run_clone", args=[run.pk])).status_code == 403
    for name in ("run_stop", "run_resume", "run_delete"):
        assert viewer_client.post(reverse(f"training:{name}", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == "queued" and not run.cancel_requested


def test_operator_queues_a_run_on_the_training_cluster(operator_client, dataset, django_capture_on_commit_callbacks):
    page = operator_client.get(reverse("training:run_new") + "?family=gpt")
    form = page.context["form"]
    data = {name: field.value() for name, field in ((n, form[n]) for n in form.fields) if field.value() is not None}
    data = {key: ("on" if value is True else value) for key, value in data.items() if value is not False}
    data.update(dataset=dataset.pk, family="gpt", name="browserless", train__max_steps="60")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse("training:run_new"), data)
    run = TrainingRun.objects.get(name="browserless")
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    assert run.status == "queued" and run.overrides == {"train.max_steps": 60} and run.max_steps == 60
    assert run.config["model"]["n_layer"] == 2 and run.config["model"]["vocab_size"] == 700
    assert [row.key for row in OrmQ.objects.all() if row.task_id() == run.task_id] == ["long"]
    assert b"queued until a worker" in operator_client.get(run.get_absolute_url()).content


def test_metrics_feed_returns_only_new_points(operator_client, dataset):
    run = new_run(dataset)
    add_points(run, "train", range(5, 55, 5), loss=lambda s: 10 - s / 10, lr=0.001)
    add_points(run, "eval", [25, 50], val_loss=lambda s: 9 - s / 10)
    url = reverse("training:run_metrics", args=[run.pk])
    first = operator_client.get(url).json()
    assert first["series"]["train"]["loss"]["step"] == list(range(5, 55, 5))
    assert first["series"]["eval"]["val_loss"]["y"] == [6.5, 4.0]
    assert first["run"]["status"] == "queued" and first["run"]["max_steps"] == 12

    again = operator_client.get(url, {"after_id": first["last_id"]}).json()
    assert again["series"] == {} and again["last_id"] == first["last_id"]
    add_points(run, "train", [55, 60], loss=4.0, lr=0.001)
    newer = operator_client.get(url, {"after_id": first["last_id"]}).json()
    assert newer["series"]["train"]["loss"]["step"] == [55, 60] and "eval" not in newer["series"]
    assert newer["last_id"] > first["last_id"]
    assert operator_client.get(url, {"after_id": "x"}).status_code == 400


def test_downsampling_keeps_extremes_and_last_point_within_the_bound():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100_000)
    y[31_337], y[77_777] = -50.0, 50.0
    keep = downsample(np.arange(len(y)), y, 1500)
    assert len(keep) <= 1500 and 31_337 in keep and 77_777 in keep and len(y) - 1 in keep
    assert (np.diff(keep) > 0).all()
    assert len(downsample(np.arange(10), np.arange(10.0), 1500)) == 10


def test_a_run_with_100k_points_is_served_downsampled(operator_client, dataset):
    run = new_run(dataset, name="long-run")
    with connection.cursor() as cursor:  # 100k rows in one statement; the ORM would take most of the test
        cursor.execute(
            "INSERT INTO training_metricpoint (run_id, kind, step, tokens, elapsed, values) "
            "SELECT %s, 'train', s, s * 256, s * 0.1, jsonb_build_object('loss', 5 + 1.0 / s "
            "+ CASE WHEN s = 60000 THEN 0.5 ELSE 0 END, 'lr', 0.001) FROM generate_series(1, 100000) AS s",
            [run.pk],
        )
    # How fast this is belongs in a benchmark, not here: a timing assert fails on a loaded machine (it did in CI).
    data = operator_client.get(reverse("training:run_metrics", args=[run.pk])).json()
    loss = data["series"]["train"]["loss"]
    assert data["downsampled"] and len(loss["y"]) <= OVERVIEW_POINTS
    assert loss["step"][-1] == 100_000 and 60_000 in loss["step"] and max(loss["y"]) == pytest.approx(6.0)
    assert len(metric_series(run, after_id=data["last_id"])["series"]) == 0


def test_dead_worker_is_detected_and_offered_for_resume(operator_client, dataset):
    run = new_run(dataset, name="killed")
    enqueue(run, "training.tasks.runs.train_run", cluster="long")
    stale = timezone.now() - timedelta(minutes=5)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=stale, started_at=stale, worker="host:123"
    )
    assert any(row.task_id() == run.task_id for row in OrmQ.objects.all())

    listing = operator_client.get(reverse("training:runs")).content.decode()
    run.refresh_from_db()
    assert run.status == "dead" and "silent" in run.message and "dead" in listing
    assert not any(row.task_id() == run.task_id for row in OrmQ.objects.all())  # never handed out again
    page = operator_client.get(run.get_absolute_url()).content.decode()
    assert "Worker silent" in page and 'id="resume-run"' in page

    operator_client.post(reverse("training:run_resume", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == "queued" and run.resumes == 1 and not run.cancel_requested


def test_stop_a_queued_run_and_a_running_one(operator_client, dataset):
    queued, running = new_run(dataset, name="q"), new_run(dataset, name="r")
    TrainingRun.objects.filter(pk=running.pk).update(status="running", heartbeat_at=timezone.now())
    operator_client.post(reverse("training:run_stop", args=[queued.pk]))
    operator_client.post(reverse("training:run_stop", args=[running.pk]))
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == "stopped"
    assert running.status == "stopping" and running.cancel_requested
    # A finished run cannot be resumed; a stopped one can.
    TrainingRun.objects.filter(pk=running.pk).update(status="finished")
    response = operator_client.post(reverse("training:run_resume", args=[running.pk]), follow=True)
    assert b"only stopped, failed or dead" in response.content
    operator_client.post(reverse("training:run_resume", args=[queued.pk]))
    queued.refresh_from_db()
    assert queued.status == "queued"


def test_delete_is_refused_while_running_and_removes_files_after(operator_client, dataset):
    run = new_run(dataset, name="doomed")
    run.directory.mkdir(parents=True)
    (run.directory / "checkpoints").mkdir()
    TrainingRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    response = operator_client.post(reverse("training:run_delete", args=[run.pk]), follow=True)
    assert b"stop it before deleting" in response.content and TrainingRun.objects.filter(pk=run.pk).exists()

    TrainingRun.objects.filter(pk=run.pk).update(status="stopped")
    response = operator_client.post(reverse("training:run_delete", args=[run.pk]))
    assert response.status_code == 302 and not TrainingRun.objects.filter(pk=run.pk).exists()
    assert not run.directory.exists()


def test_clone_prefills_the_form_with_the_parent(operator_client, dataset):
    parent = new_run(dataset, name="parent", learning_rate="0.005")
    response = operator_client.get(reverse("training:run_clone", args=[parent.pk]), follow=True)
    form = response.context["form"]
    assert form["name"].value() == "parent-clone" and str(form["parent"].value()) == str(parent.pk)
    assert form["train__learning_rate"].value() == 0.005 and form["train__max_steps"].value() == 12
    assert b"Clone of" in response.content


def test_compare_shows_only_differing_hyperparameters(operator_client, dataset):
    a = new_run(dataset, name="cmp-a")
    b = create_run(
        dataset=dataset,
        family="gpt",
        preset_name="tiny",
        name="cmp-b",
        overrides={**FAST, "learning_rate": "0.001"},
        queue=False,
    )
    response = operator_client.get(reverse("training:run_compare"), {"ids": [a.pk, b.pk]})
    keys = [key for key, _ in response.context["differences"]]
    assert "train.learning_rate" in keys and "family" in keys and "model.n_layer" in keys
    assert "train.batch_size" not in keys and "dataset" not in keys
    html = response.content.decode()
    assert "cmp-a" in html and "cmp-b" in html and 'id="compare-chart"' in html
    # Nothing ticked: back to the list with a message, not a 404 page.
    response = operator_client.get(reverse("training:run_compare"), follow=True)
    assert response.redirect_chain == [(reverse("training:runs"), 302)]
    assert "Tick the runs to compare first" in response.content.decode()


def test_run_page_highlights_config_changes(operator_client, dataset):
    run = new_run(dataset, name="shown")
    html = operator_client.get(run.get_absolute_url()).content.decode()
    assert f"{len(FAST)} settings changed" in html
    assert 'class="changed"><td><code>train.max_steps</code>' in html
    assert "plotly" in html and 'id="chart-loss"' in html and 'id="chart-parse"' in html


def test_malformed_ids_are_answered_without_a_server_error(operator_client, dataset):
    assert operator_client.get(reverse("training:run_new") + "?clone=abc").status_code == 404
    preview = operator_client.get(reverse("training:run_preview"), {"dataset": "abc"})
    assert preview.status_code == 200 and preview.json()["parameter_count"]
    response = operator_client.post(reverse("training:run_new"), {"parent": "abc", "name": "x"})
    assert response.status_code == 200 and response.context["form"].errors


def test_run_page_shows_the_disk_the_run_uses(operator_client, dataset):
    run = new_run(dataset, name="on-disk", keep_last_checkpoints=2)
    (run.directory / "checkpoints").mkdir(parents=True)
    (run.directory / "checkpoints" / "step_0000010.pt").write_bytes(b"x" * 3000)
    (run.directory / "tb").mkdir()
    (run.directory / "tb" / "events").write_bytes(b"x" * 1000)
    assert run.disk_usage() == {"total": 4000, "checkpoints": 3000}
    html = operator_client.get(run.get_absolute_url()).content.decode()
    disk = re.sub(r"[ \n]+", " ", html.split('<dd id="run-disk">', 1)[1].split("</dd>", 1)[0]).strip()
    assert disk == "3.9\xa0KB · checkpoints 2.9\xa0KB · keeps last 2"


def test_failed_run_shows_the_first_line_and_folds_the_traceback(viewer_client, dataset):
    run = tiny_run(dataset)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, message=TRACEBACK)
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    header = re.search(r'<p class="muted" id="run-message">(.*?)</p>', page, re.S).group(1)
    assert header == "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
    assert '<details id="run-traceback"' in page and "Traceback (most recent call last)" in page
    summary = viewer_client.get(reverse("training:run_metrics", args=[run.pk])).json()["run"]
    assert summary["message"] == header


def test_run_page_labels_memory_now_and_peak(viewer_client, dataset):
    run = tiny_run(dataset)
    TrainingRun.objects.filter(pk=run.pk).update(device="cpu · test", memory_bytes=300 * 2**20)
    MetricPoint.objects.create(
        run=run,
        kind="train",
        step=2,
        tokens=512,
        elapsed=1.0,
        values={"loss": 5.0, "memory": 300 * 2**20, "memory_now": 200 * 2**20},
    )
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert "Process memory (RSS) now / peak during this run" in page
    assert re.search(r'id="run-memory-now">200\.0\xa0MB</span> now', page)
    assert re.search(r'id="run-memory">300\.0\xa0MB</span> peak', page)
    assert viewer_client.get(reverse("training:run_metrics", args=[run.pk])).json()["run"]["memory_now"] == 200 * 2**20


def test_parse_chart_says_when_samples_come_instead_of_an_empty_axis(viewer_client, dataset):
    run = tiny_run(dataset)
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert "samples every 1,000 steps; none yet" in page and 'data-chart="chart-parse" data-empty="1"' in page
    MetricPoint.objects.create(run=run, kind="samples", step=2, tokens=512, elapsed=1.0, values={"parse_share": 0.5})
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert 'data-chart="chart-parse" data-empty="1"' not in page


@pytest.mark.parametrize("sort", ["loss", "-loss"])
def test_runs_without_a_loss_sort_last_both_ways(viewer_client, dataset, sort):
    runs = {name: tiny_run(dataset, name=name) for name in ("none-a", "low", "high", "none-b")}
    TrainingRun.objects.filter(pk=runs["low"].pk).update(last_loss=1.0)
    TrainingRun.objects.filter(pk=runs["high"].pk).update(last_loss=3.0)
    names = [run.name for run in viewer_client.get(reverse("training:runs"), {"sort": sort}).context["object_list"]]
    assert names[:2] == (["low", "high"] if sort == "loss" else ["high", "low"])
    assert set(names[2:]) == {"none-a", "none-b"}


def test_compare_groups_tokens_per_second_and_lists_family_once(viewer_client, dataset):
    a, b = tiny_run(dataset, name="cmp-a"), tiny_run(dataset, name="cmp-b", family="gpt")
    TrainingRun.objects.filter(pk=a.pk).update(tokens_per_sec=12345.6)
    keys = [key for key, _ in differing_hyperparameters([a, b])]
    assert "family" in keys and "model.family" not in keys
    page = viewer_client.get(reverse("training:run_compare"), {"ids": [a.pk, b.pk]}).content.decode()
    assert '<td class="num">12,346</td>' in page


def test_warmup_not_below_max_steps_warns_on_the_run_page(viewer_client, dataset):
    fine = tiny_run(dataset, name="warm-ok")
    assert 'id="warmup-warning"' not in viewer_client.get(fine.get_absolute_url()).content.decode()
    long_warmup = tiny_run(dataset, name="warm-long", warmup_steps="12")
    page = viewer_client.get(long_warmup.get_absolute_url()).content.decode()
    assert 'id="warmup-warning"' in page and "warmup_steps (12) is not below max_steps (12)" in page
