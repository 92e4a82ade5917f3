"""In real Chromium against gunicorn and the training cluster: start a tiny hrm and a tiny gpt run, watch the
charts grow live, stop and resume one, compare both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.training.support import make_dataset
from training.models import Checkpoint, MetricPoint, TrainingRun

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "static" / "screenshots" / "run.png"
TRAINING_TIMEOUT = 180_000
# Short but real: the tiny preset with fewer steps, frequent logging, evals, checkpoints and samples.
COMMON = {
    "train__logging_steps": "2",
    "train__eval_steps": "10",
    "train__save_steps": "10",
    "train__eval_iters": "2",
    "train__validation_frequency": "15",
    "train__sample_max_tokens": "24",
    "train__max_refinement_iterations": "2",
}


def chart_points(page, chart_id: str = "chart-loss") -> int:
    return page.evaluate(f"""() => {{
        const el = document.getElementById({chart_id!r});
        return el && el.data ? el.data.reduce((n, trace) => n + (trace.y ? trace.y.length : 0), 0) : 0;
    }}""")


def start_run(page, base_url: str, *, family: str, name: str, settings: dict[str, str]) -> None:
    page.goto(base_url + "/runs/new/")
    page.select_option("#id_dataset", label="e2e-ds")
    page.select_option("#id_family", family)
    page.select_option("#id_preset", "tiny")
    # The form takes the family's preset defaults from the server (gpt: twice the blocks) and shows the count.
    expect(page.locator("#id_model__n_layer")).to_have_value("2" if family == "gpt" else "1")
    # The first count imports torch in the web process: allow for a cold start.
    expect(page.locator("#param-count")).to_have_text(re.compile(r"^\d[\d,]+$"), timeout=60_000)
    page.fill("#id_name", name)
    for field, value in {**COMMON, **settings}.items():
        page.fill(f"#id_{field}", value)
    expect(page.locator("[data-setting=train__max_steps].changed")).to_have_count(1)
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    # "queued until a worker takes it" shows until the training worker claims the run (often at once here).
    expect(page.locator("#run-status")).to_have_text(re.compile("queued|running|finished"))


def wait_for_growth(page, timeout_ms: int = TRAINING_TIMEOUT) -> None:
    """The loss chart gains points while the page stays loaded: the live feed, not a reload."""
    page.wait_for_function(
        "() => { const el = document.getElementById('chart-loss');"
        " return el && el.data && el.data.some((t) => t.y && t.y.length >= 2); }",
        timeout=timeout_ms,
    )
    before = chart_points(page)
    page.wait_for_function(
        f"() => document.getElementById('chart-loss').data.reduce((n, t) => n + t.y.length, 0) > {before}",
        timeout=timeout_ms,
    )


def test_start_watch_stop_resume_and_compare_runs(operator_page, live_stack, dataset_files):
    page = operator_page
    make_dataset(dataset_files, name="e2e-ds")

    start_run(page, live_stack.url, family="hrm", name="e2e-hrm", settings={"train__max_steps": "30"})
    hrm_url = page.url
    # The hrm run is short: its live growth is shown by the gpt run below, which runs long enough to watch.
    expect(page.locator("#run-status")).to_have_text(re.compile("running|finished"), timeout=TRAINING_TIMEOUT)

    start_run(page, live_stack.url, family="gpt", name="e2e-gpt", settings={"train__max_steps": "400"})
    gpt_url = page.url
    # One training worker: the gpt run waits for the hrm run, then its curve moves live.
    expect(page.locator("#run-status")).to_have_text("running", timeout=TRAINING_TIMEOUT)
    wait_for_growth(page)

    page.click("#stop-run")
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=60_000)
    gpt = TrainingRun.objects.get(name="e2e-gpt")
    stopped_step = gpt.step
    assert 0 < stopped_step < 400 and Checkpoint.objects.filter(run=gpt, step=stopped_step).exists()
    expect(page.locator("#checkpoints tbody tr").first).to_contain_text(f"{stopped_step:,}")

    page.click("#resume-run")
    expect(page.locator("#run-status")).to_have_text("running", timeout=TRAINING_TIMEOUT)
    wait_for_growth(page)
    page.wait_for_function(
        f"() => Number(document.getElementById('run-step').textContent.replace(/,/g, '')) > {stopped_step}",
        timeout=TRAINING_TIMEOUT,
    )
    page.click("#stop-run")
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=60_000)
    gpt.refresh_from_db()
    assert gpt.resumes == 1 and gpt.step > stopped_step
    steps = list(MetricPoint.objects.filter(run=gpt, kind="train").values_list("step", flat=True))
    assert len(steps) == len(set(steps))

    hrm = TrainingRun.objects.get(name="e2e-hrm")
    assert hrm.status == "finished" and hrm.step == 30
    first = MetricPoint.objects.filter(run=hrm, kind="train").order_by("step").first()
    assert first.step < hrm.step and hrm.last_loss < first.values["loss"]
    page.goto(hrm_url)
    page.wait_for_function(
        "() => ['chart-loss', 'chart-lr', 'chart-parse'].every((id) => {"
        " const el = document.getElementById(id); return el.data && el.data.length > 0; })"
    )
    page.select_option("#x-axis", "tokens")
    expect(page.locator("#chart-loss .xtitle")).to_have_text("tokens")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.goto(live_stack.url + "/runs/")
    page.check(f"input[name=ids][value='{hrm.pk}']")
    page.check(f"input[name=ids][value='{gpt.pk}']")
    page.click("#compare-button")
    page.wait_for_function(
        "() => { const el = document.getElementById('compare-chart');"
        " return el && el.data && el.data.filter((t) => t.showlegend !== false).length === 2; }"
    )
    differences = page.locator("#differences")
    expect(differences).to_contain_text("family")
    expect(differences).to_contain_text("train.max_steps")
    expect(differences).not_to_contain_text("train.batch_size")
    assert gpt_url != hrm_url
