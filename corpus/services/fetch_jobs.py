"""Fetch jobs: the GitHub settings, queueing, retrying and cancelling jobs, and their bodies (the worker
and the commands run the same code): a pass over the GitHub API, or an import from local git clones."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from corpus.budget import DatabaseBudget
from corpus.github.client import GitHubError, NotFound, RetriesExhausted, TokenRejected
from corpus.github.fetch import fetch_pull_requests, fetch_repository, list_merged_pulls
from corpus.gitimport import GitImportError, importable, iter_pull_requests, open_clone, read_repository
from corpus.licenses import license_allowed
from corpus.models import CrawlRepository, FetchJob, GitHubSettings, Repository, Source
from corpus.records import PRRecord
from corpus.sample.build_git import build_sample_repos
from corpus.sample.story import sample_story
from corpus.services import crawl
from corpus.services.crawl import add_to_job
from corpus.services.curation import record_automatic_exclusions
from corpus.services.dedupe import dedupe_corpus
from corpus.services.ingest import store_pull_request
from corpus.services.repositories import (
    add_repositories,
    set_repository_state,
    upsert_repository,
    validate_repository_name,
)
from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import OWNED_STATUSES, Progress, enqueue_on_commit, mark_dead, worker_name
from hrgc_site.models import JobStatus


@transaction.atomic
def save_github_settings(
    *, api_url: str, token: str | None, clear_token: bool, allowed_licenses: str, go_only: bool
) -> GitHubSettings:
    """Save the fetch settings; a blank token keeps the stored one (it is never shown back)."""
    row = GitHubSettings.load()
    row.api_url = api_url.strip()
    if clear_token:
        row.token = ""
    elif token:
        row.token = token.strip()
    row.allowed_licenses = ",".join(s.strip() for s in allowed_licenses.split(",") if s.strip())
    row.go_only = go_only
    row.save()
    return row


def create_fetch_job(
    *,
    kind: str,
    targets: list[str],
    user=None,
    git_repo_name: str = "",
    api_url: str = "",
    build_sample: bool = False,
    retry_of: FetchJob | None = None,
    enqueue: bool = True,
) -> FetchJob:
    """A queued fetch/import job; queued on the worker once the surrounding transaction commits."""
    job = FetchJob.objects.create(
        kind=kind,
        targets=list(targets),
        git_repo_name=git_repo_name,
        api_url=api_url,
        build_sample=build_sample,
        retry_of=retry_of,
        repos_total=len(targets),
        created_by=user if user and user.is_authenticated else None,
        message="queued",
    )
    if enqueue:
        enqueue_on_commit(job, "corpus.tasks.run_fetch_job")
    return job


def retry_fetch_job(*, job: FetchJob, user=None) -> FetchJob:
    """A new job for the same targets; stored PRs are skipped, so it resumes where the old one stopped."""
    if job.looks_dead:
        mark_dead(job)  # its worker is gone: the old row says so and its queue entry never runs again
    elif job.is_active:
        raise ActionRefused(f"fetch job #{job.pk} is {job.status}; cancel it or wait until it ends before retrying")
    return create_fetch_job(
        kind=job.kind,
        targets=job.targets,
        user=user,
        git_repo_name=job.git_repo_name,
        api_url=job.api_url,
        build_sample=job.build_sample,
        retry_of=job,
    )


def cancel_job(*, job) -> None:
    """Ask a running job to stop (it checks between PRs); a queued one stops before it starts."""
    model = type(job)
    # Conditional on the row, not on `job`: a worker may have claimed it since the page was read.
    if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.STOPPED, cancel_requested=True, finished_at=timezone.now(), message="cancelled"
    ):
        return
    model.objects.filter(pk=job.pk).update(cancel_requested=True)
    model.objects.filter(pk=job.pk, status__in=[JobStatus.RUNNING, JobStatus.WAITING]).update(status=JobStatus.STOPPING)


class _Run:
    """Counters and messages of one fetch/import job, written through the throttled Progress."""

    def __init__(self, job: FetchJob, echo: Callable[[str], None] | None = None):
        self.job = job
        self.progress = Progress(job)
        self.echo = echo or (lambda line: None)
        self.errors: dict[str, str] = dict(job.errors or {})
        self.counts = {
            "prs_new": job.prs_new,
            "prs_updated": job.prs_updated,
            "prs_skipped": job.prs_skipped,
            "files": job.files,
            "repos_done": job.repos_done,
        }
        self.repos_failed = 0

    def say(self, message: str, force: bool = False) -> None:
        self.echo(message)
        self.progress.update(force=force, message=message[:2000])

    def error(self, key: str, message: str) -> None:
        self.errors[key] = message[:1000]
        self.echo(f"{key}: {message}")
        self.progress.update(force=True, errors=self.errors)

    def give_up(self, key: str, message: str) -> None:
        """One target (a repository or a clone) failed as a whole: say why and go on to the next."""
        self.error(key, message)
        self.repos_failed += 1
        self.counts["repos_done"] += 1

    def every_target_failed(self, targets: int) -> bool:
        return targets > 0 and self.repos_failed >= targets

    def stored(self, outcome: str, files: int) -> None:
        key = {"new": "prs_new", "updated": "prs_updated"}.get(outcome, "prs_skipped")
        self.counts[key] += 1
        self.counts["files"] += files
        self.update()

    def update(self, force: bool = False, **fields) -> bool:
        total = max(1, self.job.repos_total)
        return self.progress.update(
            force=force, progress=min(1.0, self.counts["repos_done"] / total), **self.counts, **fields
        )

    def summary(self) -> str:
        c = self.counts
        text = (
            f"{c['repos_done']} of {self.job.repos_total} repositories; {c['prs_new']} new PRs, "
            f"{c['prs_updated']} updated, {c['prs_skipped']} skipped; {c['files']} files"
        )
        return text + (f"; {len(self.errors)} errors" if self.errors else "")


class _CrawlRun(_Run):
    """A GitHub fetch worker's counters. Several workers share one job (its owner and the helpers), so
    each adds what it did since its last write to the job row (increments, merged errors and rows);
    only the owner writes the job's message, status and progress, and answers for its claim."""

    ADDITIVE = ("prs_new", "prs_updated", "prs_skipped", "files", "repos_done")
    SUMMED = ("api_requests", "graphql_points", "git_bytes")
    FLUSH_EVERY = 1.0

    def __init__(self, job: FetchJob, echo: Callable[[str], None] | None = None, *, owner: bool = True):
        super().__init__(job, echo)
        self.owner = owner
        self.counts = dict.fromkeys(self.ADDITIVE, 0)
        self.errors = {}
        self._written: dict[str, int] = {}
        self._written_rows: dict[str, dict] = {}
        self._new_errors: dict[str, str] = {}
        self._last_flush = 0.0
        self.cancelled = False
        self.row_lost: threading.Event | None = None  # set when another worker took the row this one is on

    def say(self, message: str, force: bool = False) -> None:
        self.echo(message)
        if self.owner:
            self.progress.update(force=force, message=message[:2000])

    def error(self, key: str, message: str) -> None:
        self.errors[key] = self._new_errors[key] = message[:1000]
        self.echo(f"{key}: {message}")
        self.update(force=True)

    def update(self, force: bool = False, **fields) -> bool:
        if self.owner:
            self.progress.check_owner()
        if force or time.monotonic() - self._last_flush >= self.FLUSH_EVERY:
            self.flush(**fields)
        return self.cancelled

    def flush(self, **fields) -> None:
        local = dict(self.counts)
        for key in self.SUMMED:
            value = fields.pop(key, None)
            if value is not None:
                local[key] = value
        deltas = {key: value - self._written.get(key, 0) for key, value in local.items()}
        rows = fields.pop("repo_progress", None) or {}
        changed = {name: row for name, row in rows.items() if self._written_rows.get(name) != row}
        absolute = {key: fields.pop(key) for key in ("rate_limit_remaining", "rate_limit_reset") if key in fields}
        add_to_job(self.job.pk, deltas, self._new_errors, changed, **absolute)
        self._written.update(local)
        self._written_rows.update({name: dict(row) for name, row in changed.items()})
        self._new_errors = {}
        self._last_flush = time.monotonic()
        if self.owner:
            done = FetchJob.objects.filter(pk=self.job.pk).values_list("repos_done", flat=True).first() or 0
            total = max(1, self.job.repos_total)
            self.progress.update(force=True, progress=min(1.0, done / total), **fields)
            self.cancelled = self.progress.cancel_requested
        else:
            state = FetchJob.objects.filter(pk=self.job.pk).values("status", "cancel_requested").first()
            self.cancelled = state is None or state["cancel_requested"] or state["status"] not in OWNED_STATUSES

    def should_stop(self) -> bool:
        self.update()
        return self.cancelled or (self.row_lost is not None and self.row_lost.is_set())

    def summary(self) -> str:
        job = FetchJob.objects.get(pk=self.job.pk)
        text = (
            f"{job.repos_done} of {job.repos_total} repositories; {job.prs_new} new PRs, "
            f"{job.prs_updated} updated, {job.prs_skipped} skipped; {job.files} files"
        )
        return text + (f"; {len(job.errors)} errors" if job.errors else "")


def _github_time(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _licence_blocked(repository: Repository, allowed: list[str]) -> str:
    if license_allowed(repository.license_spdx, set(allowed)):
        return ""
    return f"skipped: licence {repository.license_spdx or 'none'} is not allowed"


def _github_failure(exc: Exception, api_url: str) -> str:
    """One line for a failed request: a dropped connection or a server that kept failing names the API asked."""
    text = " ".join(str(exc).split())
    if isinstance(exc, RetriesExhausted):
        # The last reason ends with the wait before a retry that never came.
        text = re.sub(r": retry \d+/\d+ in [\d.]+ s$", "", text)
        return f"{text} (is {api_url} reachable?)"[:1000]
    return f"{type(exc).__name__}: {text}"[:1000]


class GitHubFetch:
    """One fetch job's pass over its repositories through the GitHub API; `run` returns (status, message).

    Per repository: read it, check its licence, list its merged PRs changed since the last complete pass,
    fetch those not stored at their current version, then mark it done. A repository that fails is noted
    (on it and on the job) and the pass goes on with the next; a rejected token ends the job."""

    def __init__(
        self, job: FetchJob, *, token: str | None = None, echo=None, client=None, helper: bool = False, helpers=False
    ):
        """`helper`: this worker joins a crawl another worker owns (it takes repositories, never ends the job).
        `helpers`: the owner queues GITHUB_CRAWL_WORKERS - 1 helpers on the worker cluster."""
        self.job = job
        self.config = GitHubSettings.load()
        self.helper = helper
        self.queue_helpers = helpers and not helper
        # host:pid of this worker plus a tag: two fetches in one process are two workers.
        self.worker = f"{worker_name()}#{uuid.uuid4().hex[:6]}"
        self.run_state = _CrawlRun(job, echo, owner=not helper)
        self.main_thread = threading.current_thread()
        if client is None:
            # The token goes only to the API it belongs to (see GitHubSettings.token_for); an API URL
            # on the job was given on the command line by whoever runs the server, so its host is allowed.
            client = self.config.client(job.api_url, token, trusted_url=bool(job.api_url), on_wait=self.on_wait)
        self.client = client
        # The hour's REST requests of this token, shared with every other worker through the database.
        self.client.request_budget = DatabaseBudget(client.base_url, client.token, resource="core")
        self.allowed = self.config.allowed_license_list

    def run(self) -> tuple[str, str]:
        """Take the job's repositories one at a time until none is left (see corpus.services.crawl)."""
        run = self.run_state
        crawl.ensure_rows(self.job)
        if self.queue_helpers:
            crawl.enqueue_helpers(self.job)
        try:
            self.before_rows()
            while True:
                if run.should_stop():
                    return JobStatus.STOPPED, "stopped by user; " + run.summary()
                row = crawl.claim_next(self.job, self.worker)
                if row is None:
                    if self.helper or crawl.unfinished(self.job) == 0:
                        break
                    # Others are still on some: wait for them, or take over a row whose worker went silent.
                    self.counters()
                    time.sleep(0.5)
                    continue
                if self.work_on(row) == "stopped" and run.cancelled:
                    return JobStatus.STOPPED, "stopped by user; " + run.summary()
        except TokenRejected:
            self.counters(force=True)
            return JobStatus.FAILED, "token rejected: set a valid token on the corpus settings form or GITHUB_TOKEN"
        finally:
            self.client.close()
        self.counters(force=True)
        if self.helper:
            return JobStatus.FINISHED, "no repository left to take"
        failed = CrawlRepository.objects.filter(job=self.job, state=CrawlRepository.State.FAILED).count()
        if self.job.targets and failed >= len(self.job.targets):
            return JobStatus.FAILED, "every repository failed (see the errors); " + run.summary()
        dedupe_corpus()
        record_automatic_exclusions(fetch_job=self.job)
        return JobStatus.FINISHED, run.summary()

    def before_rows(self) -> None:
        """Work before the first repository is taken (GraphQL probes the queued ones)."""

    def work_on(self, row: CrawlRepository) -> str:
        """One claimed repository: fetched while beating on its row, then the row is released as it ended."""
        run = self.run_state
        failed_before = run.repos_failed
        with crawl.beating(row, self.worker) as lost:
            run.row_lost = lost
            try:
                self.begin_row(row.target)
                result = self.fetch_target(row.target)
            except BaseException:
                crawl.release(row, CrawlRepository.State.QUEUED, self.worker)  # another worker may take it
                raise
            finally:
                run.row_lost = None
        if lost.is_set():
            run.echo(f"{row.target}: another worker took it over; going on with the next")
            return "lost"
        if result == "stopped":
            state = CrawlRepository.State.STOPPED
        elif run.repos_failed > failed_before:
            state = CrawlRepository.State.FAILED
        else:
            state = CrawlRepository.State.DONE
        crawl.release(row, state, self.worker)
        self.counters(force=True)
        return result

    def begin_row(self, target: str) -> None:
        """Before a repository is fetched (GraphQL: its line on the crawl page continues a silent worker's)."""

    def fetch_target(self, target: str) -> str:
        """One repository of the job: "done", "failed" or "stopped" (TokenRejected goes up to end the job)."""
        run = self.run_state
        try:
            name = validate_repository_name(target)
        except Exception as exc:  # noqa: BLE001 - ValueError or ValidationError: a bad name, said clearly
            run.give_up(target, str(getattr(exc, "message", exc)))
            return "failed"
        run.say(f"{name}: reading the repository", force=True)
        try:
            repo_record = fetch_repository(self.client, name)
        except NotFound:
            repository = add_repositories(names=[name])[0]
            set_repository_state(
                repository=repository, state=Repository.State.MISSING, message="not found on GitHub (404)"
            )
            run.give_up(name, "not found (404): the repository does not exist or the token cannot see it")
            self.counters(force=True)
            return "failed"
        except TokenRejected:
            raise
        except GitHubError as exc:  # the API unreachable, or still failing after the retries
            self.give_up_on(add_repositories(names=[name])[0], exc)
            return "failed"
        repository = upsert_repository(record=repo_record, full_name=name)
        blocked = _licence_blocked(repository, self.allowed)
        if blocked:
            set_repository_state(repository=repository, state=Repository.State.LICENSE, message=blocked)
            run.give_up(name, blocked)
            return "failed"
        listed_at = timezone.now()
        try:
            summaries, etag = list_merged_pulls(
                self.client, name, updated_since=repository.pulls_updated_since, etag=repository.pulls_etag or None
            )
        except TokenRejected:
            raise
        except GitHubError as exc:
            self.give_up_on(repository, exc)
            return "failed"
        todo = self.not_stored(repository, summaries)
        run.say(f"{name}: {len(summaries)} merged PRs listed, {len(todo)} to fetch", force=True)
        failed: list[str] = []
        try:
            outcome = fetch_pull_requests(
                self.client,
                name,
                todo,
                on_result=partial(self.store, repository),
                on_error=partial(self.pull_request_failed, name, failed),
                concurrency=self.config.concurrency,
                should_stop=run.should_stop,
                go_only=self.config.go_only,
                max_file_bytes=self.config.max_file_bytes,
                max_patch_bytes=self.config.max_file_bytes,
            )
        except TokenRejected:
            raise
        except GitHubError as exc:
            self.give_up_on(repository, exc)
            return "failed"
        if outcome.stopped:
            return "stopped"
        self.finish_repository(repository, todo=todo, failed=failed, listed_at=listed_at, etag=etag)
        return "done"

    def not_stored(self, repository: Repository, summaries: list[dict]) -> list[dict]:
        """The listed PRs not already stored at this version (a retried job resumes here); the rest count as skipped."""
        known = dict(repository.pull_requests.values_list("number", "source_updated_at"))
        todo = []
        for summary in summaries:
            stored = known.get(summary["number"])
            if stored is not None and stored == _github_time(summary.get("updated_at")):
                self.run_state.counts["prs_skipped"] += 1
            else:
                todo.append(summary)
        return todo

    def store(self, repository: Repository, record, summary: dict) -> None:
        run = self.run_state
        if record is None:
            run.counts["prs_skipped"] += 1
            self.counters()
            return
        # The PR and its counts reach the database together: a worker killed right after loses neither.
        with transaction.atomic():
            outcome = store_pull_request(
                repository=repository,
                record=record,
                fetch_job=self.job,
                source_updated_at=_github_time(summary.get("updated_at")),
            )
            key = {"new": "prs_new", "updated": "prs_updated"}.get(outcome, "prs_skipped")
            run.counts[key] += 1
            run.counts["files"] += len(record.files)
            self.after_store(repository)
            self.counters(force=True)

    def after_store(self, repository: Repository) -> None:
        """Inside the store's transaction, before the counters are written (GraphQL: the crawl line's count)."""

    def pull_request_failed(self, name: str, failed: list[str], summary: dict, exc: Exception) -> None:
        failed.append(str(summary.get("number")))
        self.run_state.error(f"{name}#{summary.get('number')}", _github_failure(exc, self.client.base_url))
        self.counters()

    def finish_repository(
        self, repository: Repository, *, todo: list[dict], failed: list[str], listed_at: datetime, etag
    ) -> None:
        run = self.run_state
        complete = not failed
        if todo and len(failed) == len(todo):
            run.repos_failed += 1  # not one of its PRs came: the repository failed (each PR's error is listed)
        Repository.objects.filter(pk=repository.pk).update(
            state=Repository.State.OK if complete else Repository.State.ERROR,
            state_message="" if complete else f"{len(failed)} PRs failed: #{', #'.join(failed[:20])}",
            last_fetched_at=timezone.now(),
            # Only a complete pass moves the incremental mark: a failed PR is asked for again next time.
            **({"pulls_updated_since": listed_at - timedelta(minutes=5), "pulls_etag": etag or ""} if complete else {}),
        )
        run.counts["repos_done"] += 1
        self.counters(force=True)

    def give_up_on(self, repository: Repository, exc: Exception) -> None:
        """This repository failed (its reason is kept on it and on the job); the job goes on with the next."""
        message = _github_failure(exc, self.client.base_url)
        set_repository_state(repository=repository, state=Repository.State.ERROR, message=message)
        self.run_state.give_up(repository.full_name, message)
        self.counters(force=True)

    def on_wait(self, seconds: float, reason: str) -> None:
        """The client waits out a rate limit or a retry: the job shows as waiting until then."""
        until = timezone.now() + timedelta(seconds=seconds)
        if self.helper:  # the job's status is its owner's to write
            self.run_state.echo(reason)
            return
        FetchJob.objects.filter(pk=self.job.pk).update(
            status=JobStatus.WAITING, waiting_until=until, message=reason[:2000], heartbeat_at=timezone.now()
        )
        self.run_state.echo(reason)
        if threading.current_thread() is not self.main_thread:
            connection.close()  # the pool's threads must not keep database connections open

    def counters(self, **fields) -> bool:
        """Write the counters and the API budget (a waiting job is running again once it reports)."""
        client = self.client
        reset = client.rate_limit_reset
        waiting = {}
        if not self.helper and FetchJob.objects.filter(pk=self.job.pk, status=JobStatus.WAITING).exists():
            waiting = {"status": JobStatus.RUNNING, "waiting_until": None}
        return self.run_state.update(
            api_requests=client.requests_made,
            rate_limit_remaining=client.rate_limit_remaining,
            rate_limit_reset=datetime.fromtimestamp(reset, tz=UTC) if reset else None,
            **waiting,
            **fields,
        )


def run_github_fetch(
    job: FetchJob,
    *,
    token: str | None = None,
    echo: Callable[[str], None] | None = None,
    client=None,
    helper: bool = False,
    helpers: bool = False,
) -> tuple[str, str]:
    """Fetch the job's repositories from the GitHub API; returns (status, message) for run_job.

    GraphQL + git unless GITHUB_FETCH_METHOD is "rest" (corpus.services.github_graphql). `helper`: join
    a crawl another worker owns; `helpers`: the owner queues helpers (the worker task does)."""
    options = {"token": token, "echo": echo, "client": client, "helper": helper, "helpers": helpers}
    if settings.GITHUB_FETCH_METHOD != "rest":
        from corpus.services.github_graphql import GraphQLFetch

        return GraphQLFetch(job, **options).run()
    FetchJob.objects.filter(pk=job.pk).update(method="REST")
    return GitHubFetch(job, **options).run()


def help_crawl(job_id: int) -> str:
    """A helper worker's turn at a crawl: take its repositories until none is left (the owner ends the job)."""
    job = FetchJob.objects.filter(pk=job_id).first()
    if job is None or job.kind != Source.GITHUB or job.status not in OWNED_STATUSES or job.cancel_requested:
        return "nothing to help with"
    status, message = run_github_fetch(job, helper=True)
    return f"helped fetch #{job_id}: {message}"


def run_git_import(job: FetchJob, *, echo: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Import merged PRs from local clones (the job's targets); the sample job builds its clones first."""
    config = GitHubSettings.load()
    run = _Run(job, echo)
    targets = list(job.targets)
    discussion: dict[tuple[str, int], PRRecord] = {}
    if job.build_sample:
        run.say("building the sample git repositories", force=True)
        targets = [str(p) for p in build_sample_repos(Path(settings.DATA_DIR) / "sample-repos")]
        FetchJob.objects.filter(pk=job.pk).update(targets=targets, repos_total=len(targets))
        job.targets, job.repos_total = targets, len(targets)
        # Git holds no discussion: the sample's labels, reviews and comments come from its story, the same
        # data the GitHub-shaped server serves, matched by repository and PR number.
        discussion = {(repo.full_name, pull.number): pull for repo, pulls in sample_story() for pull in pulls}
    for target in targets:
        if run.progress.should_stop():
            return JobStatus.STOPPED, "stopped by user; " + run.summary()
        # A job someone started from the web reads only inside the import root (the form checked it when the
        # job was made; the root or the folder may have changed since). The sample and the command line are
        # not limited.
        if job.created_by_id is not None and not job.build_sample:
            if importable(target, settings.HRGC_IMPORT_ROOT) is None:
                run.give_up(target, "not a git repository inside the import root (HRGC_IMPORT_ROOT)")
                continue
        try:
            with open_clone(Path(target), workdir=Path(settings.DATA_DIR) / "tmp") as clone:
                outcome = _import_clone(job, run, config, target, clone, discussion)
        except GitImportError as exc:  # the copy itself failed
            run.give_up(target, str(exc))
            continue
        if outcome is not None:
            return outcome
    if run.every_target_failed(len(targets)):
        run.update(force=True)
        return JobStatus.FAILED, "every repository failed (see the errors); " + run.summary()
    run.say("looking for duplicates", force=True)
    dedupe_corpus()
    record_automatic_exclusions(fetch_job=job)
    run.update(force=True)
    return JobStatus.FINISHED, run.summary()


def _import_clone(job: FetchJob, run: _Run, config: GitHubSettings, target: str, clone, discussion) -> tuple | None:
    """One repository of a git import, read from our private copy; a (status, message) ends the job."""
    try:
        name_override = job.git_repo_name or None
        if name_override:
            name_override = validate_repository_name(name_override)
        elif clone is not None:
            # The same folder imported before under a name of its own (--repo, or the name form field): update
            # that repository rather than add a second copy of every PR under the name read from its remote.
            name_override = (
                Repository.objects.filter(source=Source.GIT, provenance=str(clone.source))
                .order_by(F("last_fetched_at").desc(nulls_last=True))
                .values_list("full_name", flat=True)
                .first()
            )
            if name_override:
                run.say(f"{target} was imported before as {name_override}: updating it", force=True)
        repo_record = read_repository(Path(target), name_override, clone=clone)
        full_name = validate_repository_name(repo_record.full_name)
    except (GitImportError, ValueError, OSError) as exc:
        run.give_up(target, str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - a ValidationError from the name check
        run.give_up(target, str(getattr(exc, "message", exc)))
        return None
    repository = upsert_repository(record=repo_record, full_name=full_name, source=Source.GIT)
    blocked = _licence_blocked(repository, config.allowed_license_list)
    if blocked:
        set_repository_state(repository=repository, state=Repository.State.LICENSE, message=blocked)
        run.give_up(full_name, blocked)
        return None
    run.say(f"{full_name}: reading merged pull requests from {target}", force=True)
    # The sample is small enough to read again whole, so PRs stored before it carried discussion get it.
    known = set() if job.build_sample else set(repository.pull_requests.values_list("number", flat=True))
    run.counts["prs_skipped"] += len(known)
    try:
        for record in iter_pull_requests(
            Path(target),
            full_name,
            known_numbers=known,
            go_only=config.go_only,
            max_file_bytes=config.max_file_bytes,
            max_patch_bytes=config.max_file_bytes,
            clone=clone,
        ):
            story = discussion.get((full_name, record.number))
            if story is not None:
                record = dataclasses.replace(record, labels=list(story.labels), comments=list(story.comments))
            outcome = store_pull_request(repository=repository, record=record, fetch_job=job)
            run.stored(outcome, len(record.files))
            if run.progress.cancel_requested:
                return JobStatus.STOPPED, "stopped by user; " + run.summary()
    except GitImportError as exc:
        set_repository_state(repository=repository, state=Repository.State.ERROR, message=str(exc))
        run.give_up(full_name, str(exc))
        return None
    Repository.objects.filter(pk=repository.pk).update(
        state=Repository.State.OK, state_message="", last_fetched_at=timezone.now()
    )
    run.counts["repos_done"] += 1
    run.update(force=True)
    return None


def run_fetch(job: FetchJob, *, helpers: bool = False, **options) -> tuple[str, str]:
    """A fetch job's body; `helpers`: a GitHub crawl queues helper workers (only the worker task asks)."""
    if job.kind == Source.GIT:
        return run_git_import(job, **options)
    return run_github_fetch(job, helpers=helpers, **options)
