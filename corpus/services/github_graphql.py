"""The fetch job through GraphQL + git: metadata and discussion from GraphQL, the code from a clone.

Per repository: one light probe (metadata and the newest update: an unchanged repository costs
that one query), its clone made or fetched, then pages of merged PRs whose cursor is saved on the
repository after each page, so a killed worker's retry resumes there with the clone it left.
REST takes over for the rest of the job when GraphQL is refused, and for a repository whose
clone cannot be made; the job's `method` says which and why. The GraphQL points come from one
budget per token in the database, shared by every worker."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from corpus.budget import DatabaseBudget
from corpus.clone_locks import clone_in_use
from corpus.github.client import GitHubError, NotFound, TokenRejected, UnsafeURL, check_api_url, same_api
from corpus.github.clones import GitFailed, GitRunner, disk_usage, ensure_clone, git_url_for
from corpus.github.fetch_graphql import GraphQLOutcome, Probe, fetch_merged_pulls, probe_repositories
from corpus.github.graphql import GraphQLClient, GraphQLUnavailable
from corpus.models import FetchJob, Repository, allowed_github_hosts
from corpus.services import crawl
from corpus.services.fetch_jobs import GitHubFetch, _licence_blocked
from corpus.services.repositories import (
    add_repositories,
    clones_root,
    set_repository_state,
    upsert_repository,
    validate_repository_name,
)

GRAPHQL_METHOD = "GraphQL + git"


class GraphQLFetch(GitHubFetch):
    """GitHubFetch that reads each repository through GraphQL + git (REST when that cannot be had)."""

    def __init__(self, job: FetchJob, **options):
        super().__init__(job, **options)
        self.budget = DatabaseBudget(self.client.base_url, self.client.token)
        self.gql = GraphQLClient(self.client, budget=self.budget)
        self.rest_reason = ""  # set when GraphQL is refused: REST for the rest of the job
        self.rest_repos: dict[str, str] = {}  # repository -> why it went through REST
        self.git_bytes = 0
        # This worker's lines of the crawl page (merged into the job's repo_progress; others write theirs).
        self.progress_rows: dict[str, dict] = {}
        # GITHUB_GIT_URL belongs with GITHUB_API_URL; a job on another API clones from that API's own host.
        configured = settings.GITHUB_GIT_URL if same_api(self.client.base_url, settings.GITHUB_API_URL) else ""
        git_base = git_url_for(self.client.base_url, configured)
        try:
            check_api_url(git_base, allowed_github_hosts())
        except UnsafeURL as exc:
            self.rest_reason = f"git host refused: {exc}"
        # The API's token goes to that git host only (an http header scoped to its URL, no redirects).
        self.runner = GitRunner(git_base, self.client.token, on_wait=self.on_wait)

    # --- the pass ---------------------------------------------------------------------------

    def before_rows(self) -> None:
        self.say_method()
        self.probes: dict[str, Probe | Exception] = {}
        queued = crawl.queued_targets(self.job)
        if not self.helper:
            crawl.seed_repo_progress(self.job, queued, method=GRAPHQL_METHOD)
        self.probe_all(queued)

    def probe_all(self, targets: list[str]) -> None:
        """The queued targets' probes up front, 50 to a query: an unchanged crawl costs one query per 50
        repositories (each worker on a crawl probes what is still queued when it joins)."""
        if self.rest_reason:
            return
        names = []
        for target in targets:
            try:
                names.append(validate_repository_name(target))
            except Exception:  # noqa: BLE001, S112 - a bad name is reported when its turn comes
                continue
        if len(names) < 2:
            return
        try:
            self.probes = probe_repositories(self.gql, names)
        except GraphQLUnavailable as exc:
            self.rest_reason = f"GraphQL refused ({exc.status or 'no status'})"
            self.say_method()
        except GitHubError:
            # Each repository is probed on its own when its turn comes (a rejected token ends the job there).
            self.probes = {}

    def begin_row(self, target: str) -> None:
        """The repository's line continues from what the job row has (a silent worker's part included)."""
        stored = FetchJob.objects.filter(pk=self.job.pk).values_list("repo_progress", flat=True).first() or {}
        self.progress_rows.pop(target, None)
        if target in stored:
            self.progress_rows[target] = {k: v for k, v in stored[target].items() if not k.endswith("_base")}

    def probe(self, name: str) -> Probe:
        found = self.probes.pop(name, None)
        if found is None:
            found = probe_repositories(self.gql, [name])[name]
        if isinstance(found, Exception):
            raise found
        return found

    def fetch_target(self, target: str) -> str:
        if self.rest_reason:
            return self.through_rest(target, "")
        try:
            name = validate_repository_name(target)
        except Exception:  # noqa: BLE001 - the REST path reports a bad name the same way
            return super().fetch_target(target)
        run = self.run_state
        run.say(f"{name}: reading the repository (GraphQL)", force=True)
        self.row(name, state="reading")
        try:
            probe = self.probe(name)
        except GraphQLUnavailable as exc:
            self.rest_reason = f"GraphQL refused ({exc.status or 'no status'})"
            self.say_method()
            return self.through_rest(name, "")
        except NotFound:
            repository = add_repositories(names=[name])[0]
            set_repository_state(
                repository=repository, state=Repository.State.MISSING, message="not found on GitHub (404)"
            )
            run.give_up(name, "not found (404): the repository does not exist or the token cannot see it")
            self.row(name, state="missing")
            self.counters(force=True)
            return "failed"
        except TokenRejected:
            raise
        except GitHubError as exc:
            self.give_up_on(add_repositories(names=[name])[0], exc)
            self.row(name, state="error")
            return "failed"
        repository = upsert_repository(record=probe.repo, full_name=name)
        blocked = _licence_blocked(repository, self.allowed)
        if blocked:
            set_repository_state(repository=repository, state=Repository.State.LICENSE, message=blocked)
            run.give_up(name, blocked)
            self.row(name, state="licence")
            return "failed"
        mark = repository.pulls_updated_since
        unchanged = probe.merged_total == 0 or (
            mark is not None and probe.newest_update is not None and probe.newest_update <= mark
        )
        if unchanged and not repository.pulls_cursor:
            Repository.objects.filter(pk=repository.pk).update(
                state=Repository.State.OK, state_message="", last_fetched_at=timezone.now()
            )
            run.say(f"{name}: nothing merged or updated since the last fetch", force=True)
            run.counts["repos_done"] += 1
            self.row(name, state="unchanged")
            self.counters(force=True)
            return "done"
        run.say(f"{name}: {probe.merged_total} merged PRs; updating its clone", force=True)
        self.row(name, state="cloning")
        # The clone is in use from here to the end: a drop is refused meanwhile (and one under way is waited for).
        with clone_in_use(name):
            return self.fetch_with_clone(name, repository, probe, mark)

    def fetch_with_clone(self, name: str, repository: Repository, probe: Probe, mark) -> str:
        run = self.run_state
        try:
            clone = ensure_clone(self.runner, clones_root(), name)
        except GitFailed as exc:
            return self.through_rest(name, f"clone failed: {exc}")
        self.git_bytes += clone.bytes_received
        self.note_clone(repository, clone)
        known = dict(repository.pull_requests.values_list("number", "source_updated_at"))
        failed: list[str] = []
        self.row(name, state="fetching")
        if repository.pulls_cursor:
            run.say(f"{name}: resuming after the last stored page", force=True)
        try:
            outcome = fetch_merged_pulls(
                self.gql,
                self.runner,
                clone,
                name,
                on_result=lambda record, node: self.store(
                    repository, record, {"number": node.get("number"), "updated_at": node.get("updatedAt")}
                ),
                on_error=lambda node, exc: self.pull_request_failed(name, failed, node, exc),
                on_page=lambda cursor, outcome: self.page_done(repository, clone, cursor, outcome),
                after=repository.pulls_cursor or None,
                updated_since=mark,
                known=known,
                should_stop=run.should_stop,
                go_only=self.config.go_only,
                max_file_bytes=self.config.max_file_bytes,
                max_patch_bytes=self.config.max_file_bytes,
                page_size=settings.GITHUB_GRAPHQL_PAGE_SIZE,
            )
        except TokenRejected:
            raise
        except (GitHubError, GitFailed) as exc:
            self.give_up_on(repository, exc)
            self.row(name, state="error")
            return "failed"
        run.counts["prs_skipped"] += outcome.known
        if outcome.stopped:
            self.row(name, state="stopped")
            return "stopped"
        complete = not failed and outcome.complete
        Repository.objects.filter(pk=repository.pk).update(
            state=Repository.State.OK if not failed else Repository.State.ERROR,
            state_message="" if not failed else f"{len(failed)} PRs failed: #{', #'.join(failed[:20])}",
            last_fetched_at=timezone.now(),
            pulls_cursor="",
            clone_bytes=disk_usage(clone.path),
            # Only a complete pass moves the incremental mark: a failed PR is asked for again next time.
            **({"pulls_updated_since": probe.newest_update} if complete else {}),
        )
        if failed and outcome.fetched == 0 and outcome.skipped == 0:
            run.repos_failed += 1
        run.counts["repos_done"] += 1
        self.row(name, state="done" if not failed else "errors")
        self.counters(force=True)
        return "done"

    def through_rest(self, name: str, why: str) -> str:
        if why:
            self.rest_repos[name] = why
            self.run_state.say(f"{name}: REST instead of GraphQL + git ({why})", force=True)
            self.say_method()
        self.row(name, state="fetching", method="REST")
        result = super().fetch_target(name)
        self.row(name, state={"done": "done", "failed": "error", "stopped": "stopped"}.get(result, result))
        return result

    # --- bookkeeping --------------------------------------------------------------------------

    def page_done(self, repository: Repository, clone, cursor: str | None, outcome: GraphQLOutcome) -> None:
        """A page is stored: its cursor goes on the repository (a killed worker resumes after it)."""
        self.git_bytes += clone.bytes_received
        clone.bytes_received = 0
        Repository.objects.filter(pk=repository.pk).update(pulls_cursor=cursor or "")
        self.row(repository.full_name, pages=outcome.pages)
        self.counters()

    def after_store(self, repository: Repository) -> None:
        self.row(repository.full_name)

    def note_clone(self, repository: Repository, clone) -> None:
        Repository.objects.filter(pk=repository.pk).update(
            clone_bytes=disk_usage(clone.path), clone_partial=clone.partial, cloned_at=timezone.now()
        )
        clone.bytes_received = 0

    def row(self, name: str, **fields) -> None:
        """The crawl's line for one repository: state, PRs stored, points and requests spent, git bytes,
        and the worker on it; what an earlier worker on it spent is kept (a taken-over row goes on from there)."""
        row = self.progress_rows.setdefault(
            name,
            {"state": "queued", "prs": 0, "points": 0, "requests": 0, "git_bytes": 0, "method": GRAPHQL_METHOD},
        )
        row.update(fields, worker=self.worker.split("#", 1)[0])
        stored = self.run_state.counts["prs_new"] + self.run_state.counts["prs_updated"]
        if "prs_base" not in row:
            row["prs_base"] = stored - row.get("prs", 0)
            row["points_base"] = self.gql.points_spent - row.get("points", 0)
            row["requests_base"] = self.client.requests_made - row.get("requests", 0)
            row["git_base"] = self.git_bytes - row.get("git_bytes", 0)
        row["prs"] = stored - row["prs_base"]
        row["points"] = self.gql.points_spent - row["points_base"]
        row["requests"] = self.client.requests_made - row["requests_base"]
        row["git_bytes"] = self.git_bytes - row["git_base"]
        if row["state"] in ("done", "unchanged", "error", "errors", "missing", "licence", "stopped"):
            for key in ("prs_base", "points_base", "requests_base", "git_base"):
                row.pop(key, None)

    def say_method(self) -> None:
        if self.rest_reason:
            method = f"REST ({self.rest_reason})"
        else:
            method = GRAPHQL_METHOD
            if self.rest_repos:
                method += f"; REST for {len(self.rest_repos)} repositories ({next(iter(self.rest_repos.values()))})"
        FetchJob.objects.filter(pk=self.job.pk).update(method=method[:300])
        self.run_state.echo(f"method: {method}")

    def counters(self, **fields) -> bool:
        public = {
            name: {k: v for k, v in row.items() if not k.endswith("_base")} for name, row in self.progress_rows.items()
        }
        return super().counters(
            graphql_points=self.gql.points_spent, git_bytes=self.git_bytes, repo_progress=public, **fields
        )

    def give_up_on(self, repository: Repository, exc: Exception) -> None:
        if isinstance(exc, GitFailed):
            message = f"git: {exc}"[:1000]
            set_repository_state(repository=repository, state=Repository.State.ERROR, message=message)
            self.run_state.give_up(repository.full_name, message)
            self.counters(force=True)
            return
        super().give_up_on(repository, exc)
