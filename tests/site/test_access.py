"""The access battery: every URL the project defines, walked with real objects.

- Anonymous visitors are sent to the login page everywhere.
- Every page answers 200 (to a viewer, or to an operator for operator-only pages) for an object that exists.
- Every action gets a valid payload and changes the database for an operator; a viewer gets 403 and
  changes nothing; a form without its CSRF token is refused.
- The new rules: the GitHub API URL is operator-only and refused at internal addresses unless allow-listed,
  a stored token is dropped when its API URL changes, git import paths are limited to the import root.

A URL added to the project without an entry in PAGES or ACTIONS fails `test_every_url_is_covered`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from tests.conftest import OPERATOR_PASSWORD

SKIP_PREFIXES = ("admin/", "static/")


def _walk(resolver, prefix="", namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


def project_url_names() -> set[str]:
    return {name for name, route in _walk(get_resolver()) if not route.startswith(SKIP_PREFIXES)}


# --- real objects, with their files ------------------------------------------------------------


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> SimpleNamespace:
    """A trained tokenizer and a built dataset (files only), made once for the session."""
    from corpus.plans import Plan
    from corpus.serialize import serialize
    from tests.training.data_fixtures import pr_records
    from training.dataset import build_dataset
    from training.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("access-assets")
    records = [
        (r.repo, serialize(r, Plan(intent="FIX", steps=[f"<INTENT:FIX> step {r.number}"]))) for r in pr_records()
    ]
    trained = train_tokenizer([text.text for _, text in records], root / "tok" / "tokenizer", vocab_size=400)
    dataset = root / "dataset"
    build_dataset(records, trained.model_path, dataset, processes=1, seq_len=64)
    return SimpleNamespace(model=trained.model_path, vocab=trained.vocab_path, dataset=dataset)


def _git_clone(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    base = ["git", "-C", str(path), "-c", "user.name=a", "-c", "user.email=a@example.com"]
    subprocess.run([*base, "init", "-q", "-b", "main"], check=True, env=env)
    (path / "a.go").write_text("package a\n")
    subprocess.run([*base, "add", "-A"], check=True, env=env)
    subprocess.run([*base, "commit", "-q", "-m", "Initial commit"], check=True, env=env)
    return path


@pytest.fixture
def world(db, settings, tmp_path, assets) -> SimpleNamespace:
    """One object of every kind, each in a state its actions accept."""
    from corpus.models import CurationEvent, FetchJob, GitHubSettings, PullRequest, Repository, Snapshot, Source
    from corpus.services import curation
    from models_registry.models import ExportedModel
    from training.models import Checkpoint, DatasetBuild, MetricPoint, TokenizerVersion, TrainingRun

    settings.DATA_DIR = tmp_path / "data"
    settings.HRGC_IMPORT_ROOT = tmp_path / "imports"
    settings.HRGC_GITHUB_ALLOWED_HOSTS = []
    w = SimpleNamespace()
    w.clone = _git_clone(settings.HRGC_IMPORT_ROOT / "widgets")
    w.repo = Repository.objects.create(full_name="acme/widgets", license_spdx="MIT")
    w.git_repo = Repository.objects.create(
        full_name="acme/local", source=Source.GIT, provenance=str(w.clone), license_spdx="MIT"
    )
    w.pr = PullRequest.objects.create(repository=w.repo, number=1, title="Fix it", source_url="https://x.test/1")
    w.pr2 = PullRequest.objects.create(repository=w.repo, number=2, title="Add it")
    curation.curate_pull_requests(pull_requests=PullRequest.objects.filter(pk=w.pr2.pk), action="exclude", reason="x")
    w.event = CurationEvent.objects.get()
    w.finished_job = FetchJob.objects.create(targets=["acme/widgets"], status="failed", message="boom")
    w.running_job = FetchJob.objects.create(targets=["acme/widgets"], status="running", heartbeat_at=timezone.now())
    GitHubSettings.objects.create(pk=1, api_url="https://api.github.com", token="ghp_stored")

    snapshot_file = settings.DATA_DIR / "snapshots" / "snap.jsonl"
    snapshot_file.parent.mkdir(parents=True)
    snapshot_file.write_text("")
    w.snapshot = Snapshot.objects.create(
        name="snap", status="finished", file_path=str(snapshot_file), sha256=hashlib.sha256(b"").hexdigest()
    )
    w.snapshot.pull_requests.add(w.pr)

    w.tokenizer = TokenizerVersion.objects.create(name="tok", snapshot=w.snapshot, vocab_size=400, status="finished")
    w.tokenizer.directory.mkdir(parents=True)
    model, vocab = shutil.copy(assets.model, w.tokenizer.directory), shutil.copy(assets.vocab, w.tokenizer.directory)
    TokenizerVersion.objects.filter(pk=w.tokenizer.pk).update(model_path=model, vocab_path=vocab)
    w.failed_tokenizer = TokenizerVersion.objects.create(name="tok-failed", snapshot=w.snapshot, status="failed")
    w.spare_tokenizer = TokenizerVersion.objects.create(name="tok-spare", snapshot=w.snapshot, status="finished")

    w.dataset = DatasetBuild.objects.create(
        name="ds", snapshot=w.snapshot, tokenizer=w.tokenizer, status="finished", seq_len=64
    )
    shutil.copytree(assets.dataset, w.dataset.directory)
    DatasetBuild.objects.filter(pk=w.dataset.pk).update(path=str(w.dataset.directory))
    w.spare_dataset = DatasetBuild.objects.create(
        name="ds-spare", snapshot=w.snapshot, tokenizer=w.tokenizer, status="finished"
    )
    w.queued_dataset = DatasetBuild.objects.create(
        name="ds-queued", snapshot=w.snapshot, tokenizer=w.tokenizer, status="queued"
    )

    w.run = TrainingRun.objects.create(
        name="run", dataset=w.dataset, family="gpt", preset="tiny", status="stopped", step=10, max_steps=100
    )
    MetricPoint.objects.create(run=w.run, step=10, kind="train", values={"loss": 2.5})
    w.checkpoint = Checkpoint.objects.create(run=w.run, step=10, path=str(w.run.directory / "step-10.pt"))
    w.running_run = TrainingRun.objects.create(
        name="run-live", dataset=w.dataset, family="gpt", status="running", heartbeat_at=timezone.now()
    )
    w.spare_run = TrainingRun.objects.create(name="run-spare", dataset=w.dataset, family="gpt", status="failed")

    content = b"GGUF-bytes"
    w.export = ExportedModel.objects.create(run=w.run, step=10, format="gguf", quant="q8_0", status="finished")
    folder = settings.DATA_DIR / "exports" / f"{w.export.pk}-test"
    folder.mkdir(parents=True)
    (folder / "model.gguf").write_bytes(content)
    ExportedModel.objects.filter(pk=w.export.pk).update(
        path=str(folder),
        files=[{"name": "model.gguf", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}],
        size=len(content),
    )
    _evaluation_world(w)
    _board_world(w)
    for obj in vars(w).values():
        if hasattr(obj, "refresh_from_db"):
            obj.refresh_from_db()
    return w


def _board_world(w) -> None:
    """A suite with two finished evaluations of two runs (the leaderboard's rows, a pair to rate)."""
    from tests.evaluation.board_support import make_evaluation, make_suite

    w.suite = make_suite("suite-access", tasks=2, dataset=w.dataset)
    w.evaluation = make_evaluation(w.suite, w.run, metrics={"code_loss": 2.5, "exact_match": 0.5})
    w.rival_evaluation = make_evaluation(w.suite, w.spare_run, metrics={"code_loss": 3.0})
    from evaluation.models import Comparison

    w.comparison = Comparison.objects.create(dataset=w.dataset, preset="tiny", seeds=[1], tokens=2048, suite=w.suite)
    w.comparison.runs.add(w.run)


def _rate_payload(w) -> dict:
    from django.core import signing

    from evaluation.judgements import SALT

    task = w.suite.tasks.first()
    token = signing.dumps({"task": task.pk, "a": w.rival_evaluation.pk, "b": w.evaluation.pk}, salt=SALT)
    return {"token": token, "choice": "a", "suite": w.suite.pk}


def _evaluation_world(w: SimpleNamespace) -> None:
    """Suites and evaluations in each state their actions accept; the run's checkpoint file on disk."""
    from evaluation.models import Evaluation, TaskResult
    from evaluation.services.suites import create_suite

    Path(w.checkpoint.path).parent.mkdir(parents=True, exist_ok=True)
    Path(w.checkpoint.path).write_bytes(b"checkpoint")
    w.eval_suite = create_suite(dataset=w.dataset, name="suite", task_count=2)
    w.spare_suite = create_suite(dataset=w.dataset, name="suite-spare", task_count=1)
    common = {"suite": w.eval_suite, "run": w.run, "checkpoint": w.checkpoint, "tasks_total": 2}
    w.stopped_evaluation = Evaluation.objects.create(step=10, status="stopped", message="cancelled", **common)
    TaskResult.objects.create(
        evaluation=w.stopped_evaluation,
        task=w.eval_suite.tasks.get(index=0),
        code_loss=1.5,
        code_tokens=10,
        correct_tokens=4,
        attempts=[{"code": "func f() {}\n", "parses": True, "errors": [], "decision": "</CODE>"}],
        output="func f() {}\n",
        exact_match=False,
        edit_similarity=0.5,
        parses_first=True,
        parses_final=True,
    )
    w.running_evaluation = Evaluation.objects.create(
        step=9, status="running", heartbeat_at=timezone.now(), message="1 of 2 tasks", **common
    )
    w.finished_evaluation = Evaluation.objects.create(step=8, status="finished", message="done", **common)


# --- pages -------------------------------------------------------------------------------------


@dataclass
class Page:
    url: Callable[[SimpleNamespace], str]
    operator_only: bool = False
    contains: str = ""  # text the 200 answer must hold (the object is really there)
    follow: bool = False  # a page that redirects to its form


def _u(name: str, *attrs: str, query: str = "") -> Callable[[SimpleNamespace], str]:
    def url(w):
        args = [getattr(w, a).pk if hasattr(getattr(w, a), "pk") else getattr(w, a) for a in attrs]
        return reverse(name, args=args) + (f"?{query}" if query else "")

    return url


PAGES: dict[str, Page] = {
    "home": Page(_u("home")),
    "system": Page(_u("system")),
    "check_workers_result": Page(lambda w: reverse("check_workers_result", args=["no-such-task"]), contains="done"),
    "corpus:repositories": Page(_u("corpus:repositories"), contains="acme/widgets"),
    "corpus:repository": Page(_u("corpus:repository", "repo"), contains="acme/widgets"),
    "corpus:add": Page(_u("corpus:add"), contains="api.github.com"),
    "corpus:pullrequests": Page(_u("corpus:pullrequests"), contains="Fix it"),
    "corpus:pullrequest": Page(_u("corpus:pullrequest", "pr"), contains="Fix it"),
    "corpus:pullrequest_training_text": Page(_u("corpus:pullrequest_training_text", "pr")),
    "corpus:curation": Page(_u("corpus:curation"), contains="x"),
    "corpus:stats": Page(_u("corpus:stats")),
    "corpus:fetchjobs": Page(_u("corpus:fetchjobs")),
    "corpus:fetchjob": Page(_u("corpus:fetchjob", "finished_job"), contains="acme/widgets"),
    "corpus:fetchjob_progress": Page(_u("corpus:fetchjob_progress", "finished_job"), contains="failed"),
    "corpus:snapshots": Page(_u("corpus:snapshots"), contains="snap"),
    "corpus:snapshot": Page(_u("corpus:snapshot", "snapshot"), contains="snap"),
    "corpus:snapshot_progress": Page(_u("corpus:snapshot_progress", "snapshot"), contains="finished"),
    "training:tokenizers": Page(_u("training:tokenizers"), contains="tok"),
    "training:tokenizer": Page(_u("training:tokenizer", "tokenizer"), contains="tok"),
    "training:tokenizer_status": Page(_u("training:tokenizer_status", "tokenizer"), contains="finished"),
    "training:tokenizer_encode": Page(
        _u("training:tokenizer_encode", "tokenizer", query="text=func+main"), contains="ids"
    ),
    "training:tokenizer_download": Page(
        lambda w: reverse("training:tokenizer_download", args=[w.tokenizer.pk, "vocab"])
    ),
    "training:datasets": Page(_u("training:datasets"), contains="ds"),
    "training:dataset": Page(_u("training:dataset", "dataset"), contains="ds"),
    "training:dataset_status": Page(_u("training:dataset_status", "dataset"), contains="finished"),
    "training:runs": Page(_u("training:runs"), contains="run"),
    "training:run_new": Page(_u("training:run_new"), operator_only=True, contains="ds"),
    "training:run_preview": Page(
        _u("training:run_preview", query="family=gpt&preset=tiny"), contains="parameter_count"
    ),
    "training:run_compare": Page(lambda w: reverse("training:run_compare") + f"?ids={w.run.pk}&ids={w.spare_run.pk}"),
    "training:run": Page(_u("training:run", "run"), contains="run"),
    "training:run_metrics": Page(_u("training:run_metrics", "run"), contains="2.5"),
    "training:run_clone": Page(_u("training:run_clone", "run"), operator_only=True, follow=True, contains="run"),
    "models_registry:models": Page(_u("models_registry:models")),
    "models_registry:model": Page(_u("models_registry:model", "export"), contains="model.gguf"),
    "models_registry:status": Page(_u("models_registry:status", "export"), contains="finished"),
    "models_registry:download": Page(lambda w: reverse("models_registry:download", args=[w.export.pk, "model.gguf"])),
    "models_registry:playground": Page(_u("models_registry:playground")),
    "evaluation:leaderboard": Page(_u("evaluation:leaderboard"), contains="run @ 10"),
    "evaluation:rate": Page(_u("evaluation:rate"), contains="Which output is better"),
    "evaluation:ratings": Page(_u("evaluation:ratings"), contains="Human ratings"),
    "evaluation:compare": Page(_u("evaluation:compare", "dataset"), operator_only=True, contains="Token budget"),
    "evaluation:comparison": Page(_u("evaluation:comparison", "comparison"), contains="hrm vs gpt"),
    "evaluation:comparison_status": Page(_u("evaluation:comparison_status", "comparison"), contains="comparison-live"),
    "evaluation:evaluations": Page(_u("evaluation:evaluations"), contains="suite"),
    "evaluation:evaluation": Page(_u("evaluation:evaluation", "stopped_evaluation"), contains="1.500"),
    "evaluation:status": Page(_u("evaluation:status", "running_evaluation"), contains="1 of 2 tasks"),
    "evaluation:task_result": Page(
        lambda w: reverse("evaluation:task_result", args=[w.stopped_evaluation.pk, 0]), contains="func f() {}"
    ),
    "evaluation:suites": Page(_u("evaluation:suites"), contains="suite-spare"),
    "evaluation:suite": Page(_u("evaluation:suite", "eval_suite"), contains="&lt;CODE&gt;"),
    "login": Page(_u("login")),
    "password_change": Page(_u("password_change"), contains="password"),
    "password_change_done": Page(_u("password_change_done")),
}


# --- actions -----------------------------------------------------------------------------------


@dataclass
class Action:
    url: Callable[[SimpleNamespace], str]
    payload: Callable[[SimpleNamespace], dict] = lambda w: {}
    changed: Callable[[SimpleNamespace], bool] = lambda w: False  # the database after the POST
    viewer: bool = False  # a viewer may use it (it only reads)
    viewer_writes: bool = False  # a viewer may use it and it writes (hrgc_site.roles.VIEWER_WRITES)
    statuses: tuple[int, ...] = (200, 302)


def _count(model_path: str, **filters) -> int:
    from django.apps import apps

    return apps.get_model(model_path).objects.filter(**filters).count()


def _run_form(w) -> dict:
    from training.forms.runs import RunForm

    payload = {"dataset": w.dataset.pk, "family": "gpt", "preset": "tiny", "name": "run-new"}
    for key, form_field in RunForm(initial={"family": "gpt", "preset": "tiny"}).fields.items():
        if key in payload or key == "parent":
            continue
        value = form_field.initial
        if isinstance(value, bool):
            if value:
                payload[key] = "on"
        elif value is not None:
            payload[key] = value
    payload["train__max_steps"] = 5
    return payload


ACTIONS: dict[str, Action] = {
    "check_workers": Action(_u("check_workers"), changed=lambda w: _count("django_q.OrmQ") == 1),
    "corpus:repository_fetch": Action(
        _u("corpus:repository_fetch", "git_repo"),
        changed=lambda w: _count("corpus.FetchJob", kind="git", targets=[str(w.clone)]) == 1,
    ),
    "corpus:repository_curate": Action(
        _u("corpus:repository_curate", "repo"),
        lambda w: {"action": "exclude", "reason": "off-topic"},
        lambda w: _count("corpus.Repository", pk=w.repo.pk, included=False) == 1,
    ),
    "corpus:add_names": Action(
        _u("corpus:add_names"),
        lambda w: {"names": "acme/new-one\nacme/new-two", "fetch_now": "on"},
        lambda w: (
            _count("corpus.Repository", full_name__startswith="acme/new-") == 2
            and _count("corpus.FetchJob", targets=["acme/new-one", "acme/new-two"]) == 1
        ),
    ),
    "corpus:add_selected": Action(
        _u("corpus:add_selected"),
        lambda w: {"selected": ["acme/picked"]},
        lambda w: _count("corpus.Repository", full_name="acme/picked") == 1,
    ),
    "corpus:import_git": Action(
        _u("corpus:import_git"),
        lambda w: {"path": str(w.clone), "repo": "acme/imported"},
        lambda w: _count("corpus.FetchJob", kind="git", git_repo_name="acme/imported", targets=[str(w.clone)]) == 1,
    ),
    "corpus:import_sample": Action(
        _u("corpus:import_sample"), changed=lambda w: _count("corpus.FetchJob", build_sample=True) == 1
    ),
    "corpus:settings": Action(
        _u("corpus:settings"),
        lambda w: {"api_url": "", "token": "ghp_new", "allowed_licenses": "MIT", "go_only": "on"},
        lambda w: _count("corpus.GitHubSettings", token="ghp_new", allowed_licenses="MIT") == 1,
    ),
    "corpus:pullrequests_curate": Action(
        _u("corpus:pullrequests_curate"),
        lambda w: {"ids": [w.pr.pk], "action": "exclude", "reason": "bulk"},
        lambda w: _count("corpus.PullRequest", pk=w.pr.pk, included=False, excluded_reason="bulk") == 1,
    ),
    "corpus:pullrequest_curate": Action(
        _u("corpus:pullrequest_curate", "pr"),
        lambda w: {"action": "exclude", "reason": "one"},
        lambda w: _count("corpus.PullRequest", pk=w.pr.pk, included=False, excluded_reason="one") == 1,
    ),
    "corpus:curation_undo": Action(
        _u("corpus:curation_undo", "event"),
        changed=lambda w: (
            _count("corpus.PullRequest", pk=w.pr2.pk, included=True) == 1
            and _count("corpus.CurationEvent", pk=w.event.pk, undone_at__isnull=False) == 1
        ),
    ),
    "corpus:fetchjob_cancel": Action(
        _u("corpus:fetchjob_cancel", "running_job"),
        changed=lambda w: _count("corpus.FetchJob", pk=w.running_job.pk, cancel_requested=True) == 1,
    ),
    "corpus:fetchjob_retry": Action(
        _u("corpus:fetchjob_retry", "finished_job"),
        changed=lambda w: _count("corpus.FetchJob", retry_of=w.finished_job) == 1,
    ),
    "corpus:snapshot_create": Action(
        _u("corpus:snapshot_create"),
        lambda w: {"name": "snap-two", "description": "second"},
        lambda w: _count("corpus.Snapshot", name="snap-two") == 1,
    ),
    "training:tokenizers": Action(
        _u("training:tokenizers"),
        lambda w: {"snapshot": w.snapshot.pk, "name": "tok-new", "vocab_size": 500},
        lambda w: _count("training.TokenizerVersion", name="tok-new", status="queued") == 1,
    ),
    "training:tokenizer_encode": Action(
        _u("training:tokenizer_encode", "tokenizer"), lambda w: {"text": "func main() {}"}, viewer=True
    ),
    "training:tokenizer_retry": Action(
        _u("training:tokenizer_retry", "failed_tokenizer"),
        lambda w: {"vocab_size": 350},
        lambda w: _count("training.TokenizerVersion", pk=w.failed_tokenizer.pk, status="queued", vocab_size=350) == 1,
    ),
    "training:tokenizer_delete": Action(
        _u("training:tokenizer_delete", "spare_tokenizer"),
        changed=lambda w: _count("training.TokenizerVersion", pk=w.spare_tokenizer.pk) == 0,
    ),
    "training:datasets": Action(
        _u("training:datasets"),
        lambda w: {
            "snapshot": w.snapshot.pk,
            "tokenizer": w.tokenizer.pk,
            "name": "ds-new",
            "processes": 1,
            "seq_len": 128,
        },
        lambda w: _count("training.DatasetBuild", name="ds-new", status="queued") == 1,
    ),
    "training:dataset_stop": Action(
        _u("training:dataset_stop", "queued_dataset"),
        changed=lambda w: _count("training.DatasetBuild", pk=w.queued_dataset.pk, cancel_requested=True) == 1,
    ),
    "training:dataset_delete": Action(
        _u("training:dataset_delete", "spare_dataset"),
        changed=lambda w: _count("training.DatasetBuild", pk=w.spare_dataset.pk) == 0,
    ),
    "training:run_new": Action(
        _u("training:run_new"),
        _run_form,
        lambda w: _count("training.TrainingRun", name="run-new", status="queued") == 1,
    ),
    "training:run_stop": Action(
        _u("training:run_stop", "running_run"),
        changed=lambda w: _count("training.TrainingRun", pk=w.running_run.pk, cancel_requested=True) == 1,
    ),
    "training:run_resume": Action(
        _u("training:run_resume", "run"),
        changed=lambda w: _count("training.TrainingRun", pk=w.run.pk, status="queued", resumes=1) == 1,
    ),
    "training:run_delete": Action(
        _u("training:run_delete", "spare_run"),
        changed=lambda w: _count("training.TrainingRun", pk=w.spare_run.pk) == 0,
    ),
    "models_registry:export": Action(
        _u("models_registry:export", "run"),
        lambda w: {"step": 10, "format": "safetensors", "quant": "f32"},
        lambda w: _count("models_registry.ExportedModel", run=w.run, format="safetensors", status="queued") == 1,
    ),
    "models_registry:delete": Action(
        _u("models_registry:delete", "export"),
        changed=lambda w: _count("models_registry.ExportedModel", pk=w.export.pk) == 0,
    ),
    "evaluation:suite_create": Action(
        _u("evaluation:suite_create"),
        lambda w: {"dataset": w.dataset.pk, "name": "suite-new", "task_count": 2},
        lambda w: _count("evaluation.EvalSuite", name="suite-new", task_count=2) == 1,
    ),
    "evaluation:suite_delete": Action(
        _u("evaluation:suite_delete", "spare_suite"),
        changed=lambda w: _count("evaluation.EvalSuite", pk=w.spare_suite.pk) == 0,
    ),
    "evaluation:evaluate_run": Action(
        _u("evaluation:evaluate_run", "run"),
        lambda w: {"suite": w.spare_suite.pk, "step": 10, "max_attempts": 1, "max_tokens": 16},
        lambda w: _count("evaluation.Evaluation", suite=w.spare_suite, backend="torch", status="queued") == 1,
    ),
    "evaluation:evaluate_model": Action(
        _u("evaluation:evaluate_model", "export"),
        lambda w: {"suite": w.spare_suite.pk, "max_attempts": 1, "max_tokens": 16},
        lambda w: _count("evaluation.Evaluation", exported_model=w.export, backend="gguf", status="queued") == 1,
    ),
    "evaluation:cancel": Action(
        _u("evaluation:cancel", "running_evaluation"),
        changed=lambda w: _count("evaluation.Evaluation", pk=w.running_evaluation.pk, cancel_requested=True) == 1,
    ),
    "evaluation:resume": Action(
        _u("evaluation:resume", "stopped_evaluation"),
        changed=lambda w: _count("evaluation.Evaluation", pk=w.stopped_evaluation.pk, status="queued") == 1,
    ),
    "evaluation:delete": Action(
        _u("evaluation:delete", "finished_evaluation"),
        changed=lambda w: _count("evaluation.Evaluation", pk=w.finished_evaluation.pk) == 0,
    ),
    # Runs the model: needs llama.cpp and a real GGUF; its own tests cover it. Here: a viewer may call it, and
    # a model id that does not exist is a form error, not a crash.
    "models_registry:playground_generate": Action(
        _u("models_registry:playground_generate"),
        lambda w: {"model": 987654, "title": "x", "path": "main.go", "max_iterations": 1, "max_code_tokens": 16},
        viewer=True,
        statuses=(200, 400),
    ),
    "evaluation:rate": Action(
        _u("evaluation:rate"),
        _rate_payload,
        lambda w: _count("evaluation.Rating", task__suite=w.suite, outcome="second") == 1,
        viewer_writes=True,
    ),
    "evaluation:compare": Action(
        _u("evaluation:compare", "dataset"),
        lambda w: {
            "preset": "tiny",
            "seeds": "1",
            "tokens": 20_000,
            "suite": w.suite.pk,
            "task_count": 2,
            "max_attempts": 2,
            "max_tokens": 64,
        },
        lambda w: _count("evaluation.Comparison", dataset=w.dataset, runs__status="queued") == 2,
    ),
    "logout": Action(_u("logout"), viewer=True),
    "password_change": Action(
        _u("password_change"),
        lambda w: {
            "old_password": OPERATOR_PASSWORD,
            "new_password1": "n3w-Passw0rd!",
            "new_password2": "n3w-Passw0rd!",
        },
        lambda w: _user_password_is("otto", "n3w-Passw0rd!"),
        viewer=True,  # everyone may change their own password (a viewer's wrong old password: the form again)
    ),
}


def _user_password_is(username: str, password: str) -> bool:
    from django.contrib.auth.models import User

    return User.objects.get(username=username).check_password(password)


# Actions whose effect lies outside the test's transaction or needs a real GitHub (a search crawl, a task
# queued on commit, a clone on disk): their own tests cover the effect; here only who may call them.
ROLE_ONLY = {
    "corpus:add_search": Action(_u("corpus:add_search"), lambda w: {"q": "language:go"}),
    "corpus:rejudge": Action(_u("corpus:rejudge")),
    "corpus:repository_drop_clone": Action(_u("corpus:repository_drop_clone", "repo")),
}
# Read-only POSTs: the database stays as it was.
READ_ONLY_POSTS = {"training:tokenizer_encode", "models_registry:playground_generate", "logout"}


def test_every_url_is_covered():
    """A new URL must be added to the battery: as a page, an action or both."""
    assert project_url_names() - set(PAGES) - set(ACTIONS) - set(ROLE_ONLY) == set()
    assert set(PAGES) | set(ACTIONS) | set(ROLE_ONLY) <= project_url_names()


@pytest.mark.parametrize("name", sorted(ROLE_ONLY))
def test_role_only_actions(name, world, viewer_client, operator_user):
    action = ROLE_ONLY[name]
    assert viewer_client.post(action.url(world), action.payload(world)).status_code == 403
    anonymous = Client()
    assert "/accounts/login/" in anonymous.post(action.url(world))["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_user)
    assert strict.post(action.url(world), action.payload(world)).status_code == 403
    viewer_client.force_login(operator_user)
    assert viewer_client.post(action.url(world), action.payload(world)).status_code == 302


# --- anonymous ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_login_everywhere(client, world, method):
    for name in sorted(set(PAGES) | set(ACTIONS)):
        if name == "login":
            continue
        url = PAGES[name].url(world) if name in PAGES else ACTIONS[name].url(world)
        response = getattr(client, method)(url)
        assert response.status_code == 302, (name, url, response.status_code)
        assert "/accounts/login/" in response["Location"], (name, url)


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_answers_200_for_an_object_that_exists(name, world, viewer_client, operator_user):
    page = PAGES[name]
    url = page.url(world)
    if page.operator_only:
        assert viewer_client.get(url).status_code == 403, url
        viewer_client.force_login(operator_user)
    response = viewer_client.get(url, follow=page.follow)
    assert response.status_code == 200, (name, url, response.status_code)
    if page.contains:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert page.contains.encode() in body, (name, url)


# --- actions -----------------------------------------------------------------------------------


def _snapshot_of_database() -> dict[str, list]:
    from django.apps import apps

    state = {}
    for model in apps.get_models():
        if model._meta.app_label in ("corpus", "training", "models_registry", "evaluation", "hrgc_site", "django_q"):
            state[model._meta.label] = sorted(map(str, model.objects.values_list()))
    return state


def _post(client, action: Action, world):
    return client.post(action.url(world), action.payload(world))


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_changes_the_database_for_an_operator(name, world, operator_client):
    action = ACTIONS[name]
    assert not action.changed(world) or name in READ_ONLY_POSTS, f"{name}: already changed before the POST"
    before = _snapshot_of_database()
    response = _post(operator_client, action, world)
    assert response.status_code in action.statuses, (name, response.status_code)
    if name in READ_ONLY_POSTS:
        assert _snapshot_of_database() == before, name
        return
    assert action.changed(world), (name, response.status_code, response.content[:500])


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_viewer_cannot_act_and_changes_nothing(name, world, viewer_client):
    action = ACTIONS[name]
    before = _snapshot_of_database()
    response = _post(viewer_client, action, world)
    if action.viewer_writes:
        assert response.status_code in action.statuses, (name, response.status_code)
        assert action.changed(world), name
        return
    if action.viewer:
        assert response.status_code in action.statuses, (name, response.status_code)
    else:
        assert response.status_code == 403, (name, response.status_code)
    if name != "logout":
        assert _snapshot_of_database() == before, name


def test_the_only_viewer_writes_are_the_declared_ones():
    from hrgc_site.roles import VIEWER_WRITES

    assert {name for name, action in ACTIONS.items() if action.viewer_writes} == set(VIEWER_WRITES)


def test_forms_without_csrf_token_are_refused(operator_user, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    for name, action in sorted(ACTIONS.items()):
        response = client.post(action.url(world), action.payload(world))
        assert response.status_code == 403, (name, response.status_code)
        assert not action.changed(world), name


# --- the new rules -----------------------------------------------------------------------------


def test_the_github_api_url_is_operator_only_and_internal_hosts_are_refused(world, viewer_client, operator_user):
    from corpus.models import GitHubSettings

    payload = {"api_url": "http://10.0.0.5/api/v3", "allowed_licenses": "MIT", "go_only": "on"}
    assert viewer_client.post(reverse("corpus:settings"), payload).status_code == 403
    viewer_client.force_login(operator_user)
    viewer_client.post(reverse("corpus:settings"), payload)
    assert GitHubSettings.load().api_url == "https://api.github.com"  # refused: internal, not allow-listed


def test_the_stored_token_is_dropped_when_its_api_url_changes(world, operator_client):
    from corpus.models import GitHubSettings

    row = GitHubSettings.load()
    assert row.token == "ghp_stored" and row.token_api_url == "https://api.github.com"
    operator_client.post(
        reverse("corpus:settings"),
        {"api_url": "https://ghe.example.com/api/v3", "allowed_licenses": "MIT", "go_only": "on"},
    )
    row.refresh_from_db()
    assert row.api_url == "https://ghe.example.com/api/v3" and row.token == "" and row.effective_token == ""


def test_git_import_outside_the_root_is_refused(world, operator_client, tmp_path):
    from corpus.models import FetchJob

    outside = _git_clone(tmp_path / "outside")
    operator_client.post(reverse("corpus:import_git"), {"path": str(outside)})
    assert not FetchJob.objects.filter(kind="git").exists()


def test_viewer_limits(world, viewer_client):
    """What a viewer may start is bounded: a prompt past the playground's limits is refused before any model
    runs, a preview of the largest model answers from the meta device, a sample past the end is a message."""
    big = {
        "model": world.export.pk,
        "title": "x",
        "path": "main.go",
        "code_before": "x" * 20_001,
        "max_iterations": 1,
        "max_code_tokens": 16,
        "temperature": 0.5,
    }
    assert viewer_client.post(reverse("models_registry:playground_generate"), big).status_code == 400
    preview = viewer_client.get(
        reverse("training:run_preview"), {"family": "hrm", "preset": "tiny", "model__n_layer": 256}
    )
    answer = preview.json()
    assert preview.status_code == 200 and answer["parameter_count"] > answer["preset_parameter_count"]
    page = viewer_client.get(reverse("training:dataset", args=[world.dataset.pk]), {"sample": 10**9})
    assert page.status_code == 200
