"""Compare families: queue an `hrm` and a `gpt` run per seed (matched parameters, equal tokens, same seed),
evaluate every run on one suite once all have finished, then store the verdict.

`advance` moves a comparison on and is safe to call any time, from anywhere: the training task calls it
(through `run_ended`) when a run ends, so evaluations are queued with nobody watching, and the evaluation
task (through `evaluation_ended`) when an evaluation ends, so the verdict is stored; the comparison
page and its status endpoint call it too, so a run trained in the foreground (`manage.py train`) or an
evaluation finished since is picked up."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from evaluation import families
from evaluation.leaderboard import METRICS
from evaluation.models import Comparison, EvalSuite, Evaluation
from hrgc_site.errors import ActionRefused
from hrgc_site.models import JobStatus
from training.models import DatasetBuild
from training.services.runs import create_run, dataset_vocab_size, parameter_count

log = logging.getLogger(__name__)
MAX_SEEDS = 5
FAMILIES = ("hrm", "gpt")


def parse_seeds(text: str) -> list[int]:
    """ "1, 2,3" → [1, 2, 3]; ActionRefused for anything else (none, repeats, negatives, more than MAX_SEEDS)."""
    parts = [part.strip() for part in str(text).replace(" ", ",").split(",") if part.strip()]
    try:
        seeds = [int(part) for part in parts]
    except ValueError:
        raise ActionRefused(f"seeds are whole numbers separated by commas, e.g. 1,2,3 (not {text!r})") from None
    if not seeds:
        raise ActionRefused("give at least one seed, e.g. 1 or 1,2,3")
    if len(set(seeds)) != len(seeds):
        raise ActionRefused("each seed once: the same seed twice would train the same runs twice")
    if len(seeds) > MAX_SEEDS:
        raise ActionRefused(f"at most {MAX_SEEDS} seeds ({2 * MAX_SEEDS} runs)")
    if any(seed < 0 for seed in seeds):
        raise ActionRefused("seeds are zero or positive")
    return seeds


@transaction.atomic
def start_comparison(
    *,
    dataset: DatasetBuild,
    preset_name: str,
    seeds: list[int],
    tokens: int,
    suite: EvalSuite | None = None,
    task_count: int = 20,
    eval_settings: dict | None = None,
    user=None,
) -> Comparison:
    """Plan the matched pair for each seed, make (or take) the suite, and queue the runs. `eval_settings`
    (max_attempts, max_tokens) are the generation settings its evaluations will use."""
    if dataset.status != JobStatus.FINISHED:
        raise ActionRefused(f"dataset {dataset.name} is {dataset.status}; compare families on a finished dataset")
    vocab = dataset_vocab_size(dataset)
    try:
        plans = [
            families.plan_families(vocab, preset_name, tokens=tokens, seed=seed, count=parameter_count)
            for seed in seeds
        ]
    except (families.FamilyMismatch, ValueError) as error:
        raise ActionRefused(str(error)) from None
    if suite is not None and suite.dataset.tokenizer_id != dataset.tokenizer_id:
        raise ActionRefused(f"suite {suite.name} was made with another tokenizer than dataset {dataset.name}")
    if suite is None:
        from evaluation.services.suites import suite_for

        suite = suite_for(dataset=dataset, task_count=task_count, user=_user(user))
    comparison = Comparison.objects.create(
        dataset=dataset,
        preset=preset_name,
        seeds=seeds,
        tokens=plans[0].tokens,
        parameters=plans[0].parameters,
        suite=suite,
        task_count=suite.task_count,
        eval_settings=dict(eval_settings or {}),
        created_by=_user(user),
        message=f"training {2 * len(seeds)} runs",
    )
    for plan in plans:
        for family in FAMILIES:
            run = create_run(
                dataset=dataset,
                family=family,
                preset_name=preset_name,
                name=f"compare{comparison.pk}-{family}-seed{plan.seed}",
                overrides=plan.overrides[family],
                user=user,
            )
            comparison.runs.add(run)
    return comparison


def _user(user):
    return user if user is not None and user.is_authenticated else None


def advance(comparison: Comparison) -> Comparison:
    """Queue the evaluations once every run has finished; store the verdict once every evaluation has."""
    if comparison.state in (Comparison.State.FINISHED, Comparison.State.FAILED):
        return comparison
    with transaction.atomic():
        locked = Comparison.objects.select_for_update().get(pk=comparison.pk)
        if locked.state == Comparison.State.TRAINING:
            _after_training(locked)
        if locked.state == Comparison.State.EVALUATING:
            _after_evaluating(locked)
    comparison.refresh_from_db()
    return comparison


def _waiting_on(jobs) -> str | None:
    """A message naming the jobs that ended without finishing (they need a person: resume them), or None."""
    stuck = [job for job in jobs if not job.is_active and job.status != JobStatus.FINISHED]
    if stuck:
        names = ", ".join(f"{job} ({job.status})" for job in stuck)
        return f"waiting: {names} ended without finishing; resume {'it' if len(stuck) == 1 else 'them'} to go on"
    return None


def _after_training(comparison: Comparison) -> None:
    runs = list(comparison.runs.order_by("pk"))
    stuck = _waiting_on(runs)
    if stuck or any(run.status != JobStatus.FINISHED for run in runs):
        done = sum(run.status == JobStatus.FINISHED for run in runs)
        comparison.message = stuck or f"training: {done} of {len(runs)} runs finished"
        comparison.save(update_fields=["message"])
        return
    try:
        for run in runs:
            evaluation = _current_evaluation(comparison.suite, run) or _request_evaluation(comparison, run)
            comparison.evaluations.add(evaluation)
    except ActionRefused as refusal:
        comparison.state, comparison.message = Comparison.State.FAILED, f"could not evaluate: {refusal}"
        comparison.finished_at = timezone.now()
        comparison.save(update_fields=["state", "message", "finished_at"])
        return
    comparison.state = Comparison.State.EVALUATING
    comparison.message = f"evaluating {len(runs)} runs on suite {comparison.suite.name}"
    comparison.save(update_fields=["state", "message"])


def _request_evaluation(comparison: Comparison, run) -> Evaluation:
    from evaluation.services.evaluations import request_evaluation

    return request_evaluation(
        suite=comparison.suite, run=run, settings=comparison.eval_settings or None, user=comparison.created_by
    )


def _current_evaluation(suite: EvalSuite, run) -> Evaluation | None:
    """An evaluation of the run's last checkpoint on the suite that is finished or under way (someone pressed
    Evaluate already): the comparison takes it rather than queue the same work again."""
    last = run.checkpoints.order_by("-step").first()
    if last is None:
        return None
    usable = (JobStatus.FINISHED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING)
    return (
        Evaluation.objects.filter(suite=suite, run=run, step=last.step, exported_model=None, status__in=usable)
        .order_by("-pk")
        .first()
    )


def _after_evaluating(comparison: Comparison) -> None:
    evaluations = list(comparison.evaluations.select_related("run").order_by("pk"))
    stuck = _waiting_on(evaluations)
    done = [e for e in evaluations if e.status == JobStatus.FINISHED]
    if stuck or len(done) < len(evaluations) or not evaluations:
        comparison.message = stuck or f"evaluating: {len(done)} of {len(evaluations)} evaluations finished"
        comparison.save(update_fields=["message"])
        return
    comparison.verdict = verdict_of(evaluations)
    comparison.state = Comparison.State.FINISHED
    comparison.finished_at = timezone.now()
    wins = comparison.verdict["wins"]
    comparison.message = f"finished: hrm wins {wins['hrm']} metric(s), gpt {wins['gpt']}, {wins['tie']} tied"
    comparison.save(update_fields=["verdict", "state", "finished_at", "message"])


def verdict_of(evaluations: list[Evaluation]) -> dict:
    per_family: dict[str, list[dict]] = {family: [] for family in FAMILIES}
    for evaluation in evaluations:
        per_family[evaluation.run.family].append(evaluation.metrics or {})
    rows = families.verdict(per_family, [(m.key, m.lower_is_better) for m in METRICS])
    wins = {family: sum(row["winner"] == family for row in rows) for family in (*FAMILIES, "tie")}
    return {"rows": rows, "wins": wins, "seeds": len(per_family["hrm"])}


def verdict_rows(comparison: Comparison) -> list[dict]:
    """The stored verdict's rows for the page: each with its Metric (`info`) and the families' stats in order."""
    info = {m.key: m for m in METRICS}
    return [
        {**row, "info": info.get(row["metric"]), "stats": [row.get(family, {}) for family in FAMILIES]}
        for row in comparison.verdict.get("rows", [])
    ]


def run_ended(run_id: int) -> None:
    """The training task's end hook: move on every comparison that holds the run. Never raises: a problem
    here must not turn a finished training run into a failed task."""
    try:
        for comparison in Comparison.objects.filter(runs__pk=run_id, state=Comparison.State.TRAINING):
            advance(comparison)
    except Exception:  # noqa: BLE001 - logged; the comparison page's poll retries it
        log.exception("advancing the comparisons of run %s failed", run_id)


def evaluation_ended(evaluation_id: int) -> None:
    """The evaluation task's end hook: a comparison whose last evaluation this was stores its verdict."""
    try:
        for comparison in Comparison.objects.filter(evaluations__pk=evaluation_id, state=Comparison.State.EVALUATING):
            advance(comparison)
    except Exception:  # noqa: BLE001 - logged; the comparison page's poll retries it
        log.exception("advancing the comparisons of evaluation %s failed", evaluation_id)


def comparison_runs(comparison: Comparison) -> list[dict]:
    """The comparison's runs in seed order, hrm first, with their evaluation (or None)."""
    evaluations = {e.run_id: e for e in comparison.evaluations.all()}
    runs = list(comparison.runs.all())
    seed_of = {run.pk: run.config.get("train", {}).get("seed") for run in runs}
    runs.sort(key=lambda run: (seed_of[run.pk] or 0, FAMILIES.index(run.family) if run.family in FAMILIES else 9))
    return [{"run": run, "seed": seed_of[run.pk], "evaluation": evaluations.get(run.pk)} for run in runs]


def comparisons_of(dataset: DatasetBuild):
    return Comparison.objects.filter(dataset=dataset).order_by("-created_at")
