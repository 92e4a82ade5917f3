"""Merged pull requests from GraphQL (metadata and discussion, 50 per query) and git (the code).

A repository costs one light probe (its metadata and its newest update: an unchanged repository
ends there), then one query per 50 merged PRs, most recently updated first, plus follow-up
queries only for a PR whose files or discussion overflow a page. The code of a page of PRs is
read from the repository's clone after one batched fetch of the blobs it lacks."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from corpus.github.client import MalformedResponse, NotFound
from corpus.github.clones import Clone, GitFailed, GitRunner, fetch_objects, present_objects
from corpus.github.fetch import _aware, _time, validate_full_name
from corpus.github.graphql import GraphQLClient, GraphQLError, GraphQLResult
from corpus.gitimport import GitImportError, _git, changed_blob_ids, changed_files
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

PAGE_SIZE = 50
GIT_READERS = 4  # PRs whose files are read from the clone at once (git runs in subprocesses)
PAGE_RETRIES = 2  # a page whose answer lost a PR node to an error is asked for again this often
RATE = "rateLimit { cost remaining resetAt }"
AUTHOR = "author { login }"
# Connection sizes: the cost of a page is 1 + PAGE_SIZE * (5 connections + REVIEW_THREADS) requests / 100.
LABELS, COMMENTS, REVIEWS, REVIEW_THREADS, THREAD_COMMENTS, FILES = 20, 50, 30, 20, 30, 100

CONNECTIONS = {
    "labels": ("nodes { name }", LABELS),
    "comments": (f"nodes {{ fullDatabaseId body createdAt {AUTHOR} }}", COMMENTS),
    "reviews": (f"nodes {{ fullDatabaseId body createdAt submittedAt {AUTHOR} }}", REVIEWS),
    "reviewThreads": (
        f"nodes {{ comments(first: {THREAD_COMMENTS}) {{ nodes {{ fullDatabaseId body createdAt path line "
        f"originalLine diffHunk {AUTHOR} }} }} }}",
        REVIEW_THREADS,
    ),
    "files": ("nodes { path additions deletions changeType }", FILES),
}
PR_FIELDS = (
    f"number title body url createdAt updatedAt mergedAt baseRefOid headRefOid {AUTHOR} mergeCommit {{ oid }} "
    + " ".join(
        f"{name}(first: {size}) {{ {nodes} pageInfo {{ hasNextPage endCursor }} }}"
        for name, (nodes, size) in CONNECTIONS.items()
    )
)
REPO_FIELDS = (
    "nameWithOwner description isFork isArchived stargazerCount url pushedAt licenseInfo { spdxId } "
    "defaultBranchRef { name target { oid } }"
)
PROBE_FIELDS = (
    f"{REPO_FIELDS} pullRequests(states: MERGED, orderBy: {{field: UPDATED_AT, direction: DESC}}, first: 1) "
    "{ totalCount nodes { number updatedAt } }"
)
PROBE_BATCH = 50  # repositories probed in one query (aliases r0..r49): 1 point


def _probe_query(count: int) -> str:
    variables = ", ".join(f"$o{i}: String!, $n{i}: String!" for i in range(count))
    aliases = " ".join(f"r{i}: repository(owner: $o{i}, name: $n{i}) {{ {PROBE_FIELDS} }}" for i in range(count))
    return f"query({variables}) {{ {RATE} {aliases} }}"


PAGE_QUERY = f"""query($owner: String!, $name: String!, $first: Int!, $after: String) {{ {RATE}
  repository(owner: $owner, name: $name) {{
    pullRequests(states: MERGED, orderBy: {{field: UPDATED_AT, direction: DESC}}, first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ {PR_FIELDS} }} }} }} }}"""
ONE_QUERY = f"""query($owner: String!, $name: String!, $number: Int!) {{ {RATE}
  repository(owner: $owner, name: $name) {{ pullRequest(number: $number) {{ {PR_FIELDS} }} }} }}"""


def page_cost(page_size: int) -> int:
    """GitHub's price of PAGE_QUERY: 1 + page_size * (5 connections + REVIEW_THREADS) requests, / 100, rounded."""
    return max(1, int((1 + page_size * (len(CONNECTIONS) + REVIEW_THREADS)) / 100 + 0.5))


def _more_query(connection: str) -> str:
    nodes, _ = CONNECTIONS[connection]
    return f"""query($owner: String!, $name: String!, $number: Int!, $after: String) {{ {RATE}
  repository(owner: $owner, name: $name) {{ pullRequest(number: $number) {{
    {connection}(first: 100, after: $after) {{ {nodes} pageInfo {{ hasNextPage endCursor }} }} }} }} }}"""


@dataclass
class Probe:
    repo: RepoRecord
    newest_update: datetime | None
    merged_total: int


def probe_repository(gql: GraphQLClient, full_name: str) -> Probe:
    """The repository's metadata and its most recently updated merged PR, for 1 point. NotFound when missing."""
    full_name = validate_full_name(full_name)
    found = probe_repositories(gql, [full_name])[full_name]
    if isinstance(found, Exception):
        raise found
    return found


def probe_repositories(
    gql: GraphQLClient, full_names: list[str], *, batch: int = PROBE_BATCH
) -> dict[str, Probe | Exception]:
    """Probe many repositories, `batch` to a query (1 point each query): a Probe, or NotFound/GraphQLError.

    An unchanged crawl of 1,000 repositories costs 20 queries. Errors of the query as a whole
    (HTTP, GraphQL unavailable) are raised."""
    names = list(dict.fromkeys(validate_full_name(n) for n in full_names))
    out: dict[str, Probe | Exception] = {}
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]
        variables = {}
        for i, name in enumerate(chunk):
            variables[f"o{i}"], variables[f"n{i}"] = name.split("/")
        result = gql.query(_probe_query(len(chunk)), variables, cost=1)
        for i, name in enumerate(chunk):
            repo = result.data.get(f"r{i}")
            if repo is None:
                errors = [e for e in result.errors if (e.get("path") or [None])[0] == f"r{i}"]
                if any(e.get("type") == "NOT_FOUND" for e in errors) or not errors:
                    out[name] = NotFound(f"not found: {name}", 404)
                else:
                    out[name] = GraphQLError("; ".join(str(e.get("message")) for e in errors), errors)
                continue
            pulls = repo.get("pullRequests") or {}
            nodes = [n for n in pulls.get("nodes") or [] if n]
            newest = _time(nodes[0].get("updatedAt"), "updatedAt") if nodes else None
            out[name] = Probe(_repo_record(repo, name), newest, int(pulls.get("totalCount") or 0))
    return out


def _repo_record(data: dict, full_name: str) -> RepoRecord:
    licence = data.get("licenseInfo") or {}
    branch = data.get("defaultBranchRef") or {}
    return RepoRecord(
        full_name=data.get("nameWithOwner") or full_name,
        source="github",
        license_spdx=licence.get("spdxId") or "",
        stars=int(data.get("stargazerCount") or 0),
        default_branch=branch.get("name") or "main",
        description=data.get("description") or "",
        is_fork=bool(data.get("isFork")),
        is_archived=bool(data.get("isArchived")),
        provenance=data.get("url") or "",
        head_commit=(branch.get("target") or {}).get("oid") or "",
        pushed_at=_time(data.get("pushedAt"), "pushedAt"),
    )


@dataclass
class GraphQLOutcome:
    """What a repository's fetch did; `cursor` is where the next run resumes when `complete` is False."""

    fetched: int = 0
    skipped: int = 0
    known: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False
    complete: bool = False
    cursor: str | None = None
    pages: int = 0


def fetch_merged_pulls(
    gql: GraphQLClient,
    runner: GitRunner,
    clone: Clone,
    full_name: str,
    *,
    on_result: Callable[[PRRecord | None, dict], None],
    on_error: Callable[[dict, Exception], None] | None = None,
    on_page: Callable[[str | None, GraphQLOutcome], None] | None = None,
    after: str | None = None,
    updated_since: datetime | None = None,
    known: dict[int, datetime | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    go_only: bool = True,
    max_file_bytes: int = 1_000_000,
    max_patch_bytes: int = 1_000_000,
    page_size: int = PAGE_SIZE,
) -> GraphQLOutcome:
    """Page through a repository's merged PRs from `after`, newest update first, until `updated_since`.

    PRs in `known` at the same updatedAt are not read again. `on_page(cursor, outcome)` runs after
    each page is delivered, so a caller can save the cursor and resume there after a crash."""
    full_name = validate_full_name(full_name)
    owner, name = full_name.split("/")
    since = _aware(updated_since) if updated_since else None
    known = known or {}
    outcome = GraphQLOutcome(cursor=after)
    present: set[str] | None = None
    while True:
        if should_stop is not None and should_stop():
            outcome.stopped = True
            return outcome
        variables = {"owner": owner, "name": name, "first": page_size, "after": outcome.cursor}
        for _attempt in range(PAGE_RETRIES + 1):
            result = gql.query(PAGE_QUERY, variables, cost=page_cost(page_size))
            connection = ((result.data.get("repository") or {}).get("pullRequests")) or None
            if connection is None:
                raise GraphQLError(f"no pull requests in the answer for {full_name}", result.errors)
            broken = _broken_nodes(result)
            listed = connection.get("nodes") or []
            # An error in a non-null field nulls the whole PR node: which PR it was is unknown, so ask again.
            if not any(i < len(listed) and listed[i] is None for i in broken):
                break
        outcome.pages += 1
        nodes, reached_mark = [], False
        for index, node in enumerate(listed):
            if node is None:
                message = "; ".join(str(e.get("message")) for e in result.errors)[:300] or "null node"
                error = GraphQLError(f"the PR at place {index + 1} of page {outcome.pages} came back empty: {message}")
                outcome.failed.append((-1, str(error)))
                if on_error is not None:
                    on_error({"number": None}, error)
                continue
            updated = _time(node.get("updatedAt"), "updatedAt")
            if since is not None and updated is not None and updated < since:
                reached_mark = True
                break
            number = node.get("number")
            if number in known and known[number] == updated:
                outcome.known += 1
                continue
            if index in broken:  # partial data: ask for this PR again on its own
                node = _refetch(gql, owner, name, node)
                if node is None:
                    error = GraphQLError(f"#{number}: GraphQL answered with errors twice")
                    outcome.failed.append((number, str(error)))
                    if on_error is not None:
                        on_error({"number": number}, error)
                    continue
            nodes.append(node)
        for node in nodes:
            _complete(gql, owner, name, node)
        present = _deliver(
            runner, clone, full_name, nodes, outcome, on_result, on_error, present,
            go_only=go_only, max_file_bytes=max_file_bytes, max_patch_bytes=max_patch_bytes,
        )  # fmt: skip
        page_info = connection.get("pageInfo") or {}
        done = reached_mark or not page_info.get("hasNextPage")
        outcome.cursor = None if done else page_info.get("endCursor")
        outcome.complete = done
        if on_page is not None:
            on_page(outcome.cursor, outcome)
        if done:
            return outcome


def _broken_nodes(result: GraphQLResult) -> set[int]:
    """Indexes of PR nodes an error path points into (repository.pullRequests.nodes.N...)."""
    broken = set()
    for path in result.error_paths():
        if len(path) >= 4 and path[1] == "pullRequests" and path[2] == "nodes" and isinstance(path[3], int):
            broken.add(path[3])
    return broken


def _refetch(gql: GraphQLClient, owner: str, name: str, node: dict) -> dict | None:
    for _ in range(2):
        result = gql.query(ONE_QUERY, {"owner": owner, "name": name, "number": node["number"]})
        fresh = (result.data.get("repository") or {}).get("pullRequest")
        if fresh and not result.errors:
            return fresh
    return None


def _complete(gql: GraphQLClient, owner: str, name: str, node: dict) -> None:
    """Follow the connections of one PR that did not fit on the page (a big PR: more files or comments)."""
    for connection in CONNECTIONS:
        part = node.get(connection) or {}
        info = part.get("pageInfo") or {}
        while info.get("hasNextPage"):
            result = gql.query(
                _more_query(connection),
                {"owner": owner, "name": name, "number": node["number"], "after": info.get("endCursor")},
            )
            more = ((result.data.get("repository") or {}).get("pullRequest") or {}).get(connection) or {}
            part.setdefault("nodes", []).extend(more.get("nodes") or [])
            info = more.get("pageInfo") or {}
            if not more:
                break


def _deliver(
    runner: GitRunner,
    clone: Clone,
    full_name: str,
    nodes: list[dict],
    outcome: GraphQLOutcome,
    on_result: Callable[[PRRecord | None, dict], None],
    on_error: Callable[[dict, Exception], None] | None,
    present: set[str] | None,
    *,
    go_only: bool,
    max_file_bytes: int,
    max_patch_bytes: int,
) -> set[str] | None:
    wanted = []
    for node in nodes:
        paths = [f.get("path", "") for f in _nodes(node, "files")]
        if go_only and not any(p.endswith(".go") for p in paths) and not _has_rename(node):
            outcome.skipped += 1
            on_result(None, node)
        else:
            wanted.append(node)
    if not wanted:
        return present
    # The commits first (a merge into a branch the clone lacks), then every blob the page reads, in one batch.
    if clone.partial or present is not None:
        present = present if present is not None else present_objects(runner, clone)
    commits = [oid for node in wanted for oid in (_merge_oid(node), node.get("baseRefOid")) if oid]
    if present is not None:
        fetch_objects(runner, clone, commits, present)
    else:
        _fetch_absent_commits(runner, clone, commits)
    ranges = {}
    for node in wanted:
        try:
            ranges[node["number"]] = _range(clone.path, node)
        except (GitImportError, KeyError) as exc:
            ranges[node["number"]] = exc
    if clone.partial and present is not None:
        with ThreadPoolExecutor(max_workers=GIT_READERS, thread_name_prefix="git-read") as pool:
            spans = [ranges[n["number"]] for n in wanted if isinstance(ranges[n["number"]], tuple)]
            paths = [_paths(n) for n in wanted if isinstance(ranges[n["number"]], tuple)]
            lists = pool.map(lambda span, only: changed_blob_ids(clone.path, span[0], span[1], only), spans, paths)
            blobs = [oid for found in lists for oid in found]
        fetch_objects(runner, clone, blobs, present)

    def read(node: dict) -> PRRecord:
        span = ranges[node["number"]]
        if isinstance(span, Exception):
            raise span
        files = changed_files(
            clone.path,
            span[0],
            span[1],
            max_file_bytes=max_file_bytes,
            max_patch_bytes=max_patch_bytes,
            only_paths=_paths(node),
        )
        return pr_record(full_name, node, files)

    # git runs in subprocesses: a few PRs are read at once; results are delivered in order, in this thread.
    with ThreadPoolExecutor(max_workers=GIT_READERS, thread_name_prefix="git-read") as pool:
        reads = [pool.submit(read, node) for node in wanted]
    for node, future in zip(wanted, reads, strict=True):
        try:
            record = future.result()
            files = record.files
        except (GitImportError, GitFailed, MalformedResponse, ValueError) as exc:
            outcome.failed.append((node.get("number", -1), f"{type(exc).__name__}: {exc}"))
            if on_error is not None:
                on_error(node, exc)
            continue
        if go_only and not any(f.path.endswith(".go") or f.previous_path.endswith(".go") for f in files):
            outcome.skipped += 1
            on_result(None, node)
            continue
        outcome.fetched += 1
        on_result(record, node)
    return present


def _fetch_absent_commits(runner: GitRunner, clone: Clone, oids: list[str]) -> None:
    absent = []
    for oid in dict.fromkeys(oids):
        try:
            _git(clone.path, "cat-file", "-e", f"{oid}^{{commit}}")
        except GitImportError:
            absent.append(oid)
    if absent:
        fetch_objects(runner, clone, absent, present=set())


def _range(path: Path, node: dict) -> tuple[str, str]:
    """(before, after) commits: a true merge against its first parent; a squash or rebase from the PR's base."""
    after = _merge_oid(node)
    parents = _git(path, "rev-list", "--parents", "-n", "1", after).decode().split()[1:]
    before = parents[0] if len(parents) >= 2 else node.get("baseRefOid") or (parents[0] if parents else "")
    if not before:
        raise GitImportError(f"#{node.get('number')}: no base commit for {after}")
    return before, after


def _merge_oid(node: dict) -> str:
    return (node.get("mergeCommit") or {}).get("oid") or node.get("headRefOid") or ""


def _paths(node: dict) -> set[str]:
    return {f.get("path", "") for f in _nodes(node, "files")}


def _has_rename(node: dict) -> bool:
    return any(f.get("changeType") == "RENAMED" for f in _nodes(node, "files"))


def _nodes(node: dict, connection: str) -> list[dict]:
    return [n for n in ((node.get(connection) or {}).get("nodes") or []) if n]


def pr_record(full_name: str, node: dict, files: list[FileRecord]) -> PRRecord:
    """A PRRecord from one GraphQL PullRequest node and the files git read for it (shaped like REST's)."""
    if not isinstance(node.get("number"), int):
        raise MalformedResponse(f"{full_name}: a pull request node without a number")
    comments = [_comment("issue", c) for c in _nodes(node, "comments")]
    comments += [_comment("review_comment", c) for t in _nodes(node, "reviewThreads") for c in _nodes(t, "comments")]
    comments += [_comment("review", r) for r in _nodes(node, "reviews") if r.get("body")]
    merge = (node.get("mergeCommit") or {}).get("oid") or ""
    return PRRecord(
        repo=full_name,
        number=node["number"],
        title=node.get("title") or "",
        body=node.get("body") or "",
        author=(node.get("author") or {}).get("login", "ghost"),
        created_at=_time(node.get("createdAt"), "createdAt"),
        merged_at=_time(node.get("mergedAt"), "mergedAt"),
        base_commit=node.get("baseRefOid") or "",
        head_commit=node.get("headRefOid") or "",
        merge_commit=merge,
        labels=[label["name"] for label in _nodes(node, "labels") if "name" in label],
        files=files,
        comments=comments,
        source_url=node.get("url") or "",
    )


def _comment(kind: str, item: dict) -> CommentRecord:
    line = item.get("line") or item.get("originalLine")
    when = item.get("submittedAt") if kind == "review" else item.get("createdAt")
    return CommentRecord(
        kind=kind,
        author=(item.get("author") or {}).get("login", "ghost"),
        body=item.get("body") or "",
        created_at=_time(when or item.get("createdAt"), "createdAt"),
        path=item.get("path") or "",
        line=int(line) if line is not None else None,
        diff_hunk=item.get("diffHunk") or "",
        external_id=str(item.get("fullDatabaseId") or item.get("databaseId") or ""),
    )


def node_updated_at(node: dict[str, Any]) -> datetime | None:
    return _time(node.get("updatedAt"), "updatedAt")
