"""Corpus pages: repositories, adding and fetching, pull requests with search and curation, statistics, snapshots."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from django.contrib import messages
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import DetailView, ListView

from corpus import golang, selectors
from corpus.forms import (
    CurationForm,
    GitHubSettingsForm,
    GitImportForm,
    RepositoryNamesForm,
    SelectedRepositoriesForm,
    SnapshotForm,
)
from corpus.models import (
    Category,
    Comment,
    CurationEvent,
    FetchJob,
    GitHubSettings,
    Intent,
    PullRequest,
    Repository,
    Snapshot,
    Source,
)
from corpus.services import curation, fetch_jobs, repositories, snapshots
from hrgc_site.errors import ActionRefused, Invalid
from hrgc_site.job_card import job_status_view
from hrgc_site.listing import ForgivingPaginationMixin, SortableListMixin
from hrgc_site.roles import is_operator, operator_required

LONG_DIFF_LINES = 150


def _first_error(form) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


def _count(number: int, singular: str, plural: str = "") -> str:
    """The number with its noun in the right form: "1 file", "3 files"."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _readable_scope(scope: str) -> str:
    """A curation event's scope with its filter decoded ("filter: q=a+b&repo=x%2Fy" -> "filter: search a b, ...")."""
    prefix = "filter: "
    if not scope.startswith(prefix) or "=" not in scope:
        return scope
    return prefix + selectors.describe_filter(dict(parse_qsl(scope[len(prefix) :])))


# --- repositories ----------------------------------------------------------------------------


class RepositoryList(SortableListMixin, ListView):
    model = Repository
    template_name = "corpus/repository_list.html"
    sort_fields = {  # noqa: RUF012 - a read-only table, as SortableListMixin expects
        "name": "full_name",
        "prs": "pr_count",
        "included": "included_count",
        "license": "license_spdx",
        "stars": "stars",
        "fetched": "last_fetched_at",
    }
    default_sort = "name"

    def get_queryset(self):
        return self.sort_queryset(selectors.repository_list())


class RepositoryDetail(DetailView):
    model = Repository
    template_name = "corpus/repository_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        repository = self.object
        context["pulls"] = repository.pull_requests.order_by("-merged_at", "-id")[:50]
        context["pr_count"] = repository.pull_requests.count()
        context["included_count"] = repository.pull_requests.filter(included=True).count()
        context["jobs"] = FetchJob.objects.filter(targets__contains=[repository.full_name])[:5]
        context["pulls_url"] = reverse("corpus:pullrequests") + "?" + urlencode({"repo": repository.full_name})
        context["refetch_refused"] = _refetch_refused(repository)
        return context


def _refetch_refused(repository: Repository) -> str:
    """Why "Fetch now" cannot read a git repository's folder again ("" when it can, and for GitHub ones)."""
    if repository.source != Source.GIT:
        return ""
    from django.conf import settings

    from corpus.gitimport import importable

    if importable(repository.provenance, settings.HRGC_IMPORT_ROOT) is not None:
        return ""
    return (
        f"It was imported from a folder this page may not read (only clones inside {settings.HRGC_IMPORT_ROOT} can "
        "be imported from the browser): import it again with `manage.py import_git PATH`, or put the clone there "
        "and import it from Add repositories."
    )


@require_POST
@operator_required
def repository_fetch(request, pk: int):
    repository = get_object_or_404(Repository, pk=pk)
    if repository.source == Source.GIT:
        from django.conf import settings

        from corpus.forms import import_path_error
        from corpus.gitimport import importable

        if importable(repository.provenance, settings.HRGC_IMPORT_ROOT) is None:
            messages.error(request, f"Cannot fetch {repository.full_name} again. {import_path_error()}")
            return redirect(repository)
        job = fetch_jobs.create_fetch_job(
            kind=Source.GIT, targets=[repository.provenance], user=request.user, git_repo_name=repository.full_name
        )
    else:
        job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=[repository.full_name], user=request.user)
    messages.success(request, f"Fetch job #{job.pk} queued for {repository.full_name}.")
    return redirect(job)


@require_POST
@operator_required
def repository_drop_clone(request, pk: int):
    repository = get_object_or_404(Repository, pk=pk)
    try:
        freed = repositories.drop_repository_clone(repository=repository)
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(repository)
    messages.success(request, f"Clone of {repository.full_name} deleted ({filesizeformat(freed)} freed).")
    return redirect(repository)


@require_POST
@operator_required
def repository_curate(request, pk: int):
    repository = get_object_or_404(Repository, pk=pk)
    form = CurationForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
    else:
        curation.set_repository_included(
            repository=repository, included=form.cleaned_data["action"] == "include", reason=form.cleaned_data["reason"]
        )
        messages.success(request, f"{repository.full_name} {form.cleaned_data['action']}d.")
    return redirect(repository)


# --- adding repositories and settings ----------------------------------------------------------


def _settings_form() -> GitHubSettingsForm:
    row = GitHubSettings.load()
    return GitHubSettingsForm(
        initial={"api_url": row.api_url, "allowed_licenses": row.allowed_licenses, "go_only": row.go_only}
    )


@require_GET
def add_repositories(request):
    """The add page: names, a GitHub search with candidates, a local clone, the sample, settings.

    Viewers may look (the forms are hidden from them); every POST behind it is for operators."""
    row = GitHubSettings.load()
    context = {
        "names_form": RepositoryNamesForm(),
        "git_form": GitImportForm(),
        "settings_form": _settings_form(),
        "token_set": bool(row.effective_token),
        "api_url": row.effective_api_url,
        "query": "",
    }
    query = request.GET.get("q", "").strip()
    if query and is_operator(request.user):  # a search spends API requests: operators only
        from corpus.github.client import GitHubError
        from corpus.github.fetch import search_repositories

        context["query"] = query
        client = row.client(max_retries=1, timeout=15)
        try:
            found = search_repositories(client, query, limit=50)
            known = set(
                Repository.objects.filter(full_name__in=[r.full_name for r in found]).values_list(
                    "full_name", flat=True
                )
            )
            allowed = set(row.allowed_license_list)
            from corpus.licenses import license_allowed

            context["candidates"] = [
                {"record": r, "known": r.full_name in known, "allowed": license_allowed(r.license_spdx, allowed)}
                for r in found
            ]
        except (GitHubError, ValueError, OSError) as exc:
            context["search_error"] = f"The search failed: {exc}"
        finally:
            client.close()
    return render(request, "corpus/add.html", context)


def _added_message(names: list[str], existing: set[str]) -> str:
    """'Added 2 repositories.' / 'acme/web was already in the corpus.' / both, for what really changed."""
    new = [name for name in names if name not in existing]
    old = [name for name in names if name in existing]
    parts = []
    if new:
        parts.append(f"Added {_count(len(new), 'repository', 'repositories')}")
    if old:
        shown = ", ".join(old[:5]) + (f" and {len(old) - 5} more" if len(old) > 5 else "")
        parts.append(f"{shown} {'was' if len(old) == 1 else 'were'} already in the corpus")
    return "; ".join(parts)


def _add_and_maybe_fetch(request, names: list[str], fetch_now: bool):
    existing = set(Repository.objects.filter(full_name__in=names).values_list("full_name", flat=True))
    repositories.add_repositories(names=names)
    added = _added_message(names, existing)
    if fetch_now:
        job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=names, user=request.user)
        messages.success(request, f"{added}; fetch job #{job.pk} queued.")
        return redirect(job)
    messages.success(request, f"{added}.")
    return redirect("corpus:repositories")


@require_POST
@operator_required
def add_names(request):
    form = RepositoryNamesForm(request.POST)
    if not form.is_valid():
        row = GitHubSettings.load()
        return render(
            request,
            "corpus/add.html",
            {
                "names_form": form,
                "git_form": GitImportForm(),
                "settings_form": _settings_form(),
                "token_set": bool(row.effective_token),
                "api_url": row.effective_api_url,
            },
            status=400,
        )
    return _add_and_maybe_fetch(request, form.cleaned_data["names"], form.cleaned_data["fetch_now"])


@require_POST
@operator_required
def add_selected(request):
    form = SelectedRepositoriesForm(request.POST, selected=request.POST.getlist("selected"))
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(reverse("corpus:add") + "?" + urlencode({"q": request.POST.get("q", "")}))
    return _add_and_maybe_fetch(request, form.cleaned_data["names"], form.cleaned_data["fetch_now"])


@require_POST
@operator_required
def add_search(request):
    """Every match of a search (up to the limit, allowed licences only) as one crawl: one fetch job."""
    from corpus.github.client import GitHubError
    from corpus.github.crawl import search_sliced

    query = request.POST.get("q", "").strip()
    try:
        limit = max(1, min(5000, int(request.POST.get("limit") or 1000)))
    except ValueError:
        limit = 1000
    row = GitHubSettings.load()
    client = row.client(max_retries=2, timeout=30)
    try:
        found, total, note = search_sliced(client, query, limit=limit, allowed_licenses=row.allowed_license_list)
    except (GitHubError, ValueError, OSError) as exc:
        messages.error(request, f"The search failed: {exc}")
        return redirect(reverse("corpus:add") + "?" + urlencode({"q": query}))
    finally:
        client.close()
    if not found:
        messages.error(request, f"No repository with an allowed licence matches “{query}”.")
        return redirect(reverse("corpus:add") + "?" + urlencode({"q": query}))
    names = [r.full_name for r in found]
    for record in found:
        repositories.upsert_repository(record=record)
    job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=names, user=request.user)
    messages.success(
        request,
        f"Crawl of {_count(len(names), 'repository', 'repositories')} queued as fetch job #{job.pk} "
        f"({total} match the search){'; ' + note if note else ''}.",
    )
    return redirect(job)


@require_POST
@operator_required
def import_git(request):
    form = GitImportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect("corpus:add")
    job = fetch_jobs.create_fetch_job(
        kind=Source.GIT, targets=[form.cleaned_data["path"]], user=request.user, git_repo_name=form.cleaned_data["repo"]
    )
    messages.success(request, f"Import job #{job.pk} queued.")
    return redirect(job)


@require_POST
@operator_required
def import_sample(request):
    job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, user=request.user)
    messages.success(
        request,
        f"Sample import job #{job.pk} queued: it builds three small Go repositories and "
        "imports their merged pull requests.",
    )
    return redirect(job)


@require_POST
@operator_required
def rejudge_duplicates(request):
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("corpus.tasks.rejudge_duplicates_task", task_name="rejudge-duplicates"))
    messages.success(
        request,
        "Re-judging duplicates on each pull request's change in the background; pull requests that only "
        "shared a large file come back within a minute or so (reload this list).",
    )
    return redirect("corpus:pullrequests")


@require_POST
@operator_required
def save_settings(request):
    form = GitHubSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect("corpus:add")
    data = form.cleaned_data
    had_token = bool(GitHubSettings.load().token)
    row = fetch_jobs.save_github_settings(
        api_url=data["api_url"],
        token=data["token"],
        clear_token=data["clear_token"],
        allowed_licenses=data["allowed_licenses"],
        go_only=data["go_only"],
    )
    if had_token and not row.token and not data["clear_token"]:
        messages.warning(
            request, "Settings saved. The stored token was removed: it belonged to another API URL; enter it again."
        )
    else:
        messages.success(request, "Settings saved.")
    return redirect("corpus:add")


# --- fetch jobs ------------------------------------------------------------------------------


class FetchJobList(ForgivingPaginationMixin, ListView):
    model = FetchJob
    template_name = "corpus/fetchjob_list.html"
    paginate_by = 50


class FetchJobDetail(DetailView):
    model = FetchJob
    template_name = "corpus/fetchjob_detail.html"


fetchjob_progress = job_status_view(FetchJob)


@require_POST
@operator_required
def fetchjob_cancel(request, pk: int):
    job = get_object_or_404(FetchJob, pk=pk)
    fetch_jobs.cancel_job(job=job)
    messages.success(request, f"Asked fetch job #{job.pk} to stop.")
    return redirect(job)


@require_POST
@operator_required
def fetchjob_retry(request, pk: int):
    job = get_object_or_404(FetchJob, pk=pk)
    try:
        new = fetch_jobs.retry_fetch_job(job=job, user=request.user)
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(job)
    messages.success(request, f"Fetch job #{new.pk} queued for the same targets; stored PRs are skipped.")
    return redirect(new)


# --- pull requests ---------------------------------------------------------------------------


class PullRequestList(SortableListMixin, ListView):
    """Filter, search (ranked), sort; the filter lives in the URL. Counting is capped (see CappedPaginator)."""

    model = PullRequest
    template_name = "corpus/pullrequest_list.html"
    paginator_class = selectors.CappedPaginator
    sort_fields = {  # noqa: RUF012 - a read-only table, as SortableListMixin expects
        "merged": "merged_at",
        "number": "number",
        "size": "serialized_chars",
        "title": "title",
        "repo": "repository__full_name",
        "rank": "rank",
    }
    default_sort = "-merged"

    def get(self, request, *args, **kwargs):
        # The filter form sends every field; the URL keeps only the ones that say something.
        params = request.GET.copy()
        empty = [key for key, values in params.lists() if not any(value.strip() for value in values)]
        if empty:
            for key in empty:
                del params[key]
            return HttpResponseRedirect(request.path + (f"?{params.urlencode()}" if params else ""))
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        self.filters = selectors.clean_filters(self.request.GET)
        queryset = selectors.filtered_pull_requests(self.filters, rank=True)
        queryset = queryset.select_related("repository").defer("body", "search_vector", "minhash_signature")
        if "q" in self.filters and "sort" not in self.request.GET:
            return queryset.order_by("-rank", "-pk")
        sort = self.current_sort()
        if sort.lstrip("-") == "rank" and "q" not in self.filters:
            return queryset.order_by("-merged_at", "-pk")
        return self.sort_queryset(queryset)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            {
                "filters": self.filters,
                "filter_problems": selectors.filter_problems(self.request.GET),
                "filter_query": urlencode(self.filters),
                "repositories": Repository.objects.order_by("full_name").values_list("full_name", flat=True),
                "licenses": sorted(
                    {lic or "none" for lic in Repository.objects.values_list("license_spdx", flat=True).distinct()}
                ),
                "categories": Category.choices,
                "intents": Intent.choices,
                "snapshot_form": SnapshotForm(initial={"filter_query": urlencode(self.filters)}),
            }
        )
        return context


def _file_views(pr: PullRequest) -> list[dict]:
    views = []
    for file in pr.files.all():
        lines = selectors.diff_lines(file.patch)
        errors = (
            golang.syntax_errors(file.after_text, use_gofmt=False)
            if (file.is_go and file.after_text and not file.is_binary and not file.is_generated)
            else []
        )
        views.append({"file": file, "lines": lines, "long": len(lines) > LONG_DIFF_LINES, "syntax_errors": errors})
    return views


class PullRequestDetail(DetailView):
    model = PullRequest
    template_name = "corpus/pullrequest_detail.html"

    def get_queryset(self):
        return PullRequest.objects.select_related("repository", "duplicate_of__repository").prefetch_related(
            "files", Prefetch("comments", queryset=Comment.objects.order_by("created_at", "id"))
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        pr = self.object
        # Stored at ingest: a page view never parses the PR's Go files.
        plan, _ = selectors.stored_plan_and_parts(pr)
        context.update(
            {
                "files": _file_views(pr),
                "plan": plan,
                # The training text can be long: the page loads it only when asked (training_text).
                "git_import": pr.repository.source == Source.GIT,
                "curation_form": CurationForm(),
                "events": CurationEvent.objects.filter(previous__has_key=str(pr.pk))
                .select_related("user")
                .defer("previous")[:10],  # a bulk event's previous states can be megabytes; the page shows none
                "snapshots": pr.snapshots.order_by("-created_at")[:10],
            }
        )
        return context


@require_GET
def pullrequest_training_text(request, pk: int):
    """The serialized record, marked by section: an HTML fragment the PR page loads when it is unfolded."""
    pr = get_object_or_404(PullRequest.objects.select_related("repository"), pk=pk)
    _, parts = selectors.stored_plan_and_parts(pr)  # stored at ingest: no parsing here either
    fitted = selectors.page_records(parts)
    records = [{"text": record.text, "sections": selectors.sections(record)} for record in fitted.records]
    return render(
        request,
        "corpus/_training_text.html",
        {"records": records, "record_reasons": fitted.reasons, "budget": selectors.DEFAULT_BUDGET, "pr": pr},
    )


@require_POST
@operator_required
def pullrequest_curate(request, pk: int):
    pr = get_object_or_404(PullRequest, pk=pk)
    form = CurationForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(pr)
    event = curation.curate_pull_requests(
        pull_requests=PullRequest.objects.filter(pk=pr.pk),
        action=form.cleaned_data["action"],
        reason=form.cleaned_data["reason"],
        user=request.user,
        scope=str(pr),
    )
    if event is None:
        messages.info(request, f"{pr} was already {form.cleaned_data['action']}d.")
    else:
        messages.success(request, f"{pr} {form.cleaned_data['action']}d.")
    return redirect(pr)


@require_POST
@operator_required
def pullrequest_bulk_curate(request):
    """Checked rows (`ids`) or everything matching the filter (`all_matching` with `filter_query`)."""
    from django.http import QueryDict

    form = CurationForm(request.POST)
    filter_query = request.POST.get("filter_query", "")
    back = reverse("corpus:pullrequests") + (f"?{filter_query}" if filter_query else "")
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return HttpResponseRedirect(back)
    if request.POST.get("all_matching"):
        filters = selectors.clean_filters(QueryDict(filter_query))
        queryset = selectors.filtered_pull_requests(filters)
        scope = "filter: " + (filter_query or "everything")
    else:
        ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
        if not ids:
            messages.error(request, "Tick some rows, or choose everything matching this filter.")
            return HttpResponseRedirect(back)
        queryset = PullRequest.objects.filter(pk__in=ids)
        scope = f"{len(ids)} selected"
    action = form.cleaned_data["action"]
    try:
        event = curation.curate_pull_requests(
            pull_requests=queryset, action=action, reason=form.cleaned_data["reason"], user=request.user, scope=scope
        )
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)
    if event is None:
        messages.info(request, f"Nothing changed: those pull requests were already {action}d.")
    else:
        messages.success(
            request, f"{_count(event.count, 'pull request')} {event.action}d. Undo it on the curation history page."
        )
    return HttpResponseRedirect(back)


HISTORY_PRS_SHOWN = 8  # pull requests named in each history row; the rest are counted


class CurationHistory(ForgivingPaginationMixin, ListView):
    model = CurationEvent
    template_name = "corpus/curation_list.html"
    paginate_by = 50

    def get_queryset(self):
        return CurationEvent.objects.select_related("user", "undone_by").defer("previous")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        events = list(context["object_list"])
        shown = selectors.curation_event_pull_requests([event.pk for event in events], limit=HISTORY_PRS_SHOWN)
        for event in events:
            event.scope_text = _readable_scope(event.scope)
            event.shown_prs = shown.get(event.pk, [])
            event.more_prs = max(0, event.count - len(event.shown_prs))
        return context


@require_POST
@operator_required
def curation_undo(request, pk: int):
    event = get_object_or_404(CurationEvent, pk=pk)
    try:
        restored, skipped = curation.undo_curation(event=event, user=request.user)
        back = "is back to its" if restored == 1 else "are back to their"
        text = f"Undone: {_count(restored, 'pull request')} {back} previous state."
        if skipped:
            text += (
                f" {_count(skipped, 'pull request')} {'was' if skipped == 1 else 'were'} skipped: curated again "
                "since, so the later decision stands (undo it first to go further back)."
            )
        messages.success(request, text)
    except ActionRefused as exc:
        messages.error(request, str(exc))
    return redirect("corpus:curation")


# --- statistics ------------------------------------------------------------------------------


@require_GET
def corpus_stats(request):
    scope = request.GET.get("scope", "included")
    stats = selectors.corpus_stats(included_only=scope != "all")
    return render(request, "corpus/stats.html", {"stats": stats, "scope": scope})


# --- snapshots -------------------------------------------------------------------------------


class SnapshotList(ForgivingPaginationMixin, ListView):
    model = Snapshot
    template_name = "corpus/snapshot_list.html"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", SnapshotForm())
        return context


class SnapshotDetail(DetailView):
    model = Snapshot
    template_name = "corpus/snapshot_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["pulls"] = (
            self.object.pull_requests.select_related("repository")
            .order_by("repository__full_name", "number")
            .defer("body", "search_vector")[:200]
        )
        context["filter_query"] = urlencode(self.object.filter)
        context["filter_text"] = selectors.describe_filter(self.object.filter)
        return context


snapshot_progress = job_status_view(Snapshot)


@require_POST
@operator_required
def snapshot_create(request):
    from django.http import QueryDict

    form = SnapshotForm(request.POST)
    if not form.is_valid():
        return _snapshot_form_again(request, form)
    filters = {}
    if form.cleaned_data["use_filter"]:
        filters = selectors.clean_filters(QueryDict(form.cleaned_data["filter_query"]))
        filters.pop("included", None)  # a snapshot is always the included set
    try:
        snapshot = snapshots.create_snapshot(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            filters=filters,
            user=request.user,
        )
    except Invalid as exc:
        form.add_error(None, exc.error)
        return _snapshot_form_again(request, form)
    messages.success(request, f"Snapshot {snapshot.name} is being written.")
    return redirect(snapshot)


def _snapshot_form_again(request, form: SnapshotForm):
    """The snapshot list with the rejected form, so what was typed stays and the error sits beside it."""
    from django.http import QueryDict

    view = SnapshotList()
    view.setup(request)
    view.object_list = view.get_queryset()
    filters = selectors.clean_filters(QueryDict(form.data.get("filter_query", "")))
    filters.pop("included", None)
    context = view.get_context_data(form=form, filter_text=selectors.describe_filter(filters))
    return render(request, SnapshotList.template_name, context, status=400)
