"""A real local HTTP server shaped like the GitHub REST endpoints the fetcher uses, with faults to switch on."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from corpus.records import CommentRecord, PRRecord, RepoRecord

RATE_WINDOW_SECONDS = 3600
SPENT_RESET_SECONDS = 1  # a limit spent on request resets within 1-2 s (whole seconds), so a person can watch the wait
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
DOCS_URL = "https://docs.github.com/rest"
SEARCH_CAP = 1000
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # records without a zone are UTC, as GitHub's are
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_int(*parts: object) -> int:
    return int(hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def fake_sha(repo: str, number: int, role: str) -> str:
    """The deterministic 40-hex commit sha the server uses for a PR's base/head/merge commit."""
    return hashlib.sha1(f"{repo}#{number}:{role}".encode()).hexdigest()


def _text_bytes(text: str) -> bytes:
    # surrogateescape lets a story carry non-UTF-8 bytes inside a str ("\udce9" is the byte 0xe9).
    return text.encode("utf-8", "surrogateescape")


class RateLimiter:
    """The primary limit: `limit` requests per window, shared by every caller of this server."""

    def __init__(self, limit: int, now: Callable[[], float] = time.time, window: int = RATE_WINDOW_SECONDS):
        self.limit = limit
        self.window = window
        self._now = now
        self._lock = threading.Lock()
        self._remaining = limit
        self._reset = math.ceil(now()) + window

    def _refill_if_due(self) -> None:
        if self._now() >= self._reset:
            self._remaining = self.limit
            self._reset = math.ceil(self._now()) + self.window

    def state(self) -> tuple[int, int]:
        """(remaining, reset epoch seconds)."""
        with self._lock:
            self._refill_if_due()
            return self._remaining, self._reset

    def spend(self, amount: int = 1) -> bool:
        """Take `amount` (one request, or a query's points) from the bucket; False when it cannot pay."""
        with self._lock:
            self._refill_if_due()
            if self._remaining < amount or self._remaining <= 0:
                return False
            self._remaining -= amount
            return True

    def set_remaining(self, remaining: int) -> None:
        with self._lock:
            self._remaining = max(0, min(int(remaining), self.limit))
            if self._remaining == 0:
                self._reset = math.ceil(self._now()) + SPENT_RESET_SECONDS


class Faults:
    """Faults switchable while the server runs (attributes, or POST /_hrgc/faults with JSON)."""

    COUNTERS = (
        "server_errors",
        "secondary_limit",
        "malformed",
        "graphql_errors",
        "git_server_errors",
        "git_break_pack",
    )

    def __init__(self, limiter: RateLimiter):
        self._limiter = limiter
        self._lock = threading.Lock()
        self.server_errors = 0  # the next N requests answer 502/503
        self.secondary_limit = 0  # the next N requests answer 403 with Retry-After
        self.retry_after: int | None = 1  # seconds, for the secondary limit; None leaves the header out
        self.malformed = 0  # the next N requests answer 200 with invalid JSON
        self.revoke_token = False  # every request answers 401
        self.delay = 0.0  # seconds added to every response
        self.graphql_errors = 0  # the next N GraphQL queries answer partial data and an `errors` array
        self.graphql_disabled = False  # POST /graphql answers 404, as a server without GraphQL would
        self.git_server_errors = 0  # the next N git HTTP requests answer 502
        self.git_break_pack = 0  # the next N git packs are cut off halfway
        self.git_dumb = False  # git over the dumb protocol only: no partial clone

    @property
    def rate_limit_remaining(self) -> int:
        return self._limiter.state()[0]

    @rate_limit_remaining.setter
    def rate_limit_remaining(self, value: int) -> None:
        self._limiter.set_remaining(value)

    def take(self, counter: str) -> bool:
        """Use up one of a counted fault; True when this request is one of them."""
        with self._lock:
            left = getattr(self, counter)
            if left <= 0:
                return False
            setattr(self, counter, left - 1)
            return True

    def as_dict(self) -> dict[str, Any]:
        names = (
            *self.COUNTERS,
            "retry_after",
            "revoke_token",
            "delay",
            "rate_limit_remaining",
            "graphql_disabled",
            "git_dumb",
        )
        return {name: getattr(self, name) for name in names}

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON object of changes; ValueError names the first bad key or value."""
        kinds: dict[str, type] = {
            "server_errors": int,
            "secondary_limit": int,
            "malformed": int,
            "retry_after": int,
            "rate_limit_remaining": int,
            "revoke_token": bool,
            "delay": float,
            "graphql_errors": int,
            "graphql_disabled": bool,
            "git_server_errors": int,
            "git_break_pack": int,
            "git_dumb": bool,
        }
        for name, value in changes.items():
            kind = kinds.get(name)
            if kind is None:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(kinds))}")
            if name == "retry_after" and value is None:
                continue
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            if kind is not bool and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a number >= 0")
        for name, value in changes.items():
            setattr(self, name, None if value is None else kinds[name](value))


@dataclass
class _Repo:
    record: RepoRecord
    pulls: dict[int, PRRecord] = field(default_factory=dict)
    contents: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (ref, path) -> bytes
    head_oid: str = ""  # the default branch's tip (a real commit when the story is served as git)


class GitHubShapedServer:
    """Serves a story of repositories and their pull requests over real HTTP on 127.0.0.1.

    `faults` switches failures on at run time; `request_log` lists every path asked for."""

    def __init__(
        self,
        story: list[tuple[RepoRecord, list[PRRecord]]],
        *,
        token: str | None = None,
        per_page_max: int = 100,
        rate_limit: int = 5000,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        graphql_points: int = 5000,
        git_root: Path | None = None,
        git_repositories: dict[str, Path] | None = None,
        rate_window: int = RATE_WINDOW_SECONDS,
    ):
        """`rate_window`: seconds of the REST limit's window (GitHub's hour; tests shorten it).
        `git_root`: write the story as git repositories there and serve them (see githost).
        `git_repositories`: serve these existing repositories as they are (owner/name -> path), under
        `git_root` (a temporary folder when not given); their story records must carry their commits
        (`repository_story` reads one from a clone)."""
        self.token = token
        self.per_page_max = per_page_max
        self.limiter = RateLimiter(rate_limit, window=rate_window)
        self.rest_rate_limited = 0  # REST requests refused because the window's requests were spent
        self.points = RateLimiter(graphql_points)  # GraphQL's own hourly bucket, in points
        self.faults = Faults(self.limiter)
        self.search_cap = SEARCH_CAP
        self.graphql_queries = 0
        self.graphql_points_spent = 0
        self.graphql_rate_limited = 0  # queries refused because the hour's points were spent
        self.graphql_log: list[dict] = []  # the variables of every query answered
        self.git_requests = 0
        self.git_bytes_served = 0
        self.git_authorizations: list[str | None] = []
        self.git = None
        if git_repositories:
            import tempfile

            from corpus.github.githost import GitHost, link_repositories

            root = Path(git_root) if git_root is not None else Path(tempfile.mkdtemp(prefix="hrgc-github-git-"))
            link_repositories(root, git_repositories)
            self.git = GitHost(root)
        elif git_root is not None:
            from corpus.github.githost import GitHost, build_story_repositories

            story = build_story_repositories(Path(git_root), story)
            self.git = GitHost(Path(git_root))
        self.host, self.port, self.verbose = host, port, verbose
        self.base_url = ""
        self.request_log: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests answered at once: shows a client's concurrency
        self._log_lock = threading.Lock()
        self._repos = {repo.full_name.lower(): self._index(repo, pulls) for repo, pulls in story}
        self.story = story
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL (e.g. http://127.0.0.1:43121)."""
        handler = type("GitHubShapedHandler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}"
        # A short poll interval makes stop() quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="github-shaped-server", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, path: str) -> None:
        with self._log_lock:
            self.request_log.append(path)

    def track(self, delta: int) -> None:
        with self._log_lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    # --- the story ------------------------------------------------------------------------

    @staticmethod
    def shas(pr: PRRecord) -> dict[str, str]:
        """base/head/merge shas: the record's own when it has real-looking ones, else derived."""
        given = {"base": pr.base_commit, "head": pr.head_commit, "merge": pr.merge_commit}
        return {
            role: sha if _HEX40.match(sha or "") else fake_sha(pr.repo, pr.number, role) for role, sha in given.items()
        }

    def _index(self, repo: RepoRecord, pulls: list[PRRecord]) -> _Repo:
        indexed = _Repo(repo)
        for pr in sorted(pulls, key=lambda p: _updated_at(p)):
            indexed.pulls[pr.number] = pr
            shas = self.shas(pr)
            for changed in pr.files:
                if changed.before is not None:
                    indexed.contents[(shas["base"], changed.previous_path or changed.path)] = _text_bytes(
                        changed.before
                    )
                if changed.after is not None:
                    after = _text_bytes(changed.after)
                    indexed.contents[(shas["head"], changed.path)] = after
                    indexed.contents[(shas["merge"], changed.path)] = after
                    if pr.merged_at is not None:  # the newest merged text is what the default branch holds
                        indexed.contents[("", changed.path)] = after
            if pr.merged_at is not None:
                indexed.head_oid = shas["merge"]
        return indexed

    def repo(self, owner: str, name: str) -> _Repo:
        found = self._repos.get(f"{owner}/{name}".lower())
        if found is None:
            raise _HTTPError(404, "Not Found")
        return found

    def pull(self, repo: _Repo, number: str) -> PRRecord:
        pr = repo.pulls.get(int(number))
        if pr is None:
            raise _HTTPError(404, "Not Found")
        return pr

    # --- JSON shapes ------------------------------------------------------------------------

    def repo_json(self, repo: RepoRecord) -> dict[str, Any]:
        owner, name = repo.full_name.split("/", 1)
        stored = self._repos.get(repo.full_name)
        merges = [pr.merged_at for pr in stored.pulls.values() if pr.merged_at] if stored else []
        pushed = repo.pushed_at or (max(merges) if merges else None)
        spdx = repo.license_spdx
        licence = None
        if spdx:
            key = "other" if spdx == "NOASSERTION" else spdx.lower()
            licence = {"key": key, "name": "Other" if key == "other" else spdx, "spdx_id": spdx}
        return {
            "id": _stable_int(repo.full_name),
            "name": name,
            "full_name": repo.full_name,
            "owner": {"login": owner},
            "private": False,
            "description": repo.description or None,
            "fork": repo.is_fork,
            "archived": repo.is_archived,
            "language": "Go",
            "stargazers_count": repo.stars,
            "default_branch": repo.default_branch,
            "license": licence,
            "url": f"{self.base_url}/repos/{repo.full_name}",
            "html_url": f"https://github.com/{repo.full_name}",
            "pushed_at": _iso(pushed) if pushed else None,
        }

    def pull_json(self, repo: _Repo, pr: PRRecord) -> dict[str, Any]:
        shas = self.shas(pr)
        updated = _iso(_updated_at(pr))
        return {
            "url": f"{self.base_url}/repos/{pr.repo}/pulls/{pr.number}",
            "id": _stable_int(pr.repo, pr.number),
            "number": pr.number,
            "state": "closed",
            "draft": False,
            "title": pr.title,
            "body": pr.body or None,
            "user": {"login": pr.author},
            "labels": [{"name": label} for label in pr.labels],
            "created_at": _iso(pr.created_at),
            "updated_at": updated,
            "closed_at": updated,
            "merged_at": _iso(pr.merged_at),
            "merge_commit_sha": shas["merge"] if pr.merged_at else None,
            "base": {"ref": repo.record.default_branch, "sha": shas["base"], "repo": {"full_name": pr.repo}},
            "head": {"ref": f"pr-{pr.number}", "sha": shas["head"]},
            "html_url": pr.source_url or f"https://github.com/{pr.repo}/pull/{pr.number}",
        }

    def files_json(self, pr: PRRecord) -> list[dict[str, Any]]:
        shas = self.shas(pr)
        out = []
        for changed in pr.files:
            item: dict[str, Any] = {
                "sha": hashlib.sha1(_text_bytes(changed.after or "")).hexdigest(),
                "filename": changed.path,
                "status": changed.status,
                "additions": changed.additions,
                "deletions": changed.deletions,
                "changes": changed.additions + changed.deletions,
                "contents_url": f"{self.base_url}/repos/{pr.repo}/contents/{changed.path}?ref={shas['head']}",
            }
            if changed.patch:  # GitHub leaves `patch` out for binary and very large files
                item["patch"] = changed.patch
            if changed.previous_path:
                item["previous_filename"] = changed.previous_path
            out.append(item)
        return out

    def comments_json(self, pr: PRRecord, kind: str) -> list[dict[str, Any]]:
        out = []
        for index, comment in enumerate(c for c in pr.comments if c.kind == kind):
            item: dict[str, Any] = {
                "id": _comment_id(pr, comment, index),
                "user": {"login": comment.author},
                "body": comment.body,
            }
            if kind == "review":
                item.update(state="COMMENTED", submitted_at=_iso(comment.created_at))
            else:
                item.update(created_at=_iso(comment.created_at), updated_at=_iso(comment.created_at))
            if kind == "review_comment":
                item.update(path=comment.path, line=comment.line, diff_hunk=comment.diff_hunk)
            out.append(item)
        return out

    # --- endpoints ---------------------------------------------------------------------------

    def route(self, path: str, query: dict[str, str], raw: bool) -> tuple[Any, list[Any] | None]:
        """(body, items-to-paginate). Body is a JSON-able object or bytes."""
        if path == "/search/repositories":
            matches = self.search(query.get("q", ""))
            # GitHub serves at most the first 1,000 results of a search, whatever total_count says.
            return {"total_count": len(matches), "incomplete_results": False}, matches[: self.search_cap]
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            raise _HTTPError(404, "Not Found")
        repo = self.repo(parts[1], parts[2])
        rest = parts[3:]
        if not rest:
            return self.repo_json(repo.record), None
        if rest[0] == "contents" and len(rest) > 1:
            return self.contents(repo, unquote("/".join(rest[1:])), query.get("ref", ""), raw), None
        if rest == ["pulls"]:
            return None, self.pulls_list(repo, query)
        if len(rest) >= 2 and rest[0] in ("pulls", "issues") and rest[1].isdigit():
            pr = self.pull(repo, rest[1])
            tail = (rest[0], *rest[2:])
            if tail == ("pulls",):
                return self.pull_json(repo, pr), None
            if tail == ("pulls", "files"):
                return None, self.files_json(pr)
            if tail == ("pulls", "comments"):
                return None, self.comments_json(pr, "review_comment")
            if tail == ("pulls", "reviews"):
                return None, self.comments_json(pr, "review")
            if tail == ("issues", "comments"):
                return None, self.comments_json(pr, "issue")
        raise _HTTPError(404, "Not Found")

    def pulls_list(self, repo: _Repo, query: dict[str, str]) -> list[dict[str, Any]]:
        # Every PR in a story is closed: merged when merged_at is set, closed unmerged otherwise.
        state = query.get("state", "open")
        pulls = list(repo.pulls.values()) if state in ("closed", "all") else []
        sort = query.get("sort", "created")
        key = _updated_at if sort in ("updated", "long-running", "popularity") else _created_at
        # GitHub's default direction: desc for created, asc for the other sorts.
        direction = query.get("direction", "desc" if sort == "created" else "asc")
        pulls.sort(key=lambda p: (key(p), p.number), reverse=direction == "desc")
        return [self.pull_json(repo, pr) for pr in pulls]

    def contents(self, repo: _Repo, path: str, ref: str, raw: bool) -> Any:
        data = repo.contents.get((ref, path))
        if data is None:
            raise _HTTPError(404, "Not Found")
        if raw:
            return data
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": hashlib.sha1(data).hexdigest(),
            "content": base64.b64encode(data).decode(),
        }

    def search(self, q: str) -> list[dict[str, Any]]:
        try:
            terms = shlex.split(q)
        except ValueError:
            terms = q.split()
        if not terms:
            raise _HTTPError(422, "Validation Failed")
        tests = [_search_term(term) for term in terms]
        if not any(term.lower().startswith("fork:") for term in terms):
            tests.append(lambda r: not r.is_fork)  # GitHub search leaves forks out unless asked
        found = [repo.record for repo in self._repos.values() if all(test(repo.record) for test in tests)]
        found.sort(key=lambda r: (-r.stars, r.full_name))
        return [self.repo_json(r) for r in found]

    def spend_request(self) -> None:
        """One REST request from the window; one the window could not pay for (requests that passed the
        limit check together, when one request was left) counts as refused, as GitHub would have refused it."""
        if not self.limiter.spend():
            with self._log_lock:
                self.rest_rate_limited += 1

    def rate_limit_json(self) -> dict[str, Any]:
        remaining, reset = self.limiter.state()
        core = {
            "limit": self.limiter.limit,
            "remaining": remaining,
            "reset": reset,
            "used": self.limiter.limit - remaining,
            "resource": "core",
        }
        points, points_reset = self.points.state()
        graphql = {
            "limit": self.points.limit,
            "remaining": points,
            "reset": points_reset,
            "used": self.points.limit - points,
            "resource": "graphql",
        }
        return {"resources": {"core": core, "search": {**core, "resource": "search"}, "graphql": graphql}, "rate": core}

    def page(self, path: str, query: dict[str, str], items: list[Any]) -> tuple[list[Any], str | None]:
        """Slice one page and build GitHub's Link header (next/last, prev/first)."""
        per_page = max(1, min(_int(query.get("per_page"), 30), self.per_page_max))
        page = max(1, _int(query.get("page"), 1))
        last = max(1, math.ceil(len(items) / per_page))
        rels = []
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels += [("first", 1), ("prev", min(page - 1, last))]
        links = [f'<{self.base_url}{path}?{urlencode({**query, "page": n})}>; rel="{rel}"' for rel, n in rels]
        return items[(page - 1) * per_page : page * per_page], ", ".join(links) or None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return _EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _updated_at(pr: PRRecord) -> datetime:
    return _aware(pr.merged_at or pr.created_at)


def _created_at(pr: PRRecord) -> datetime:
    return _aware(pr.created_at)


def _etags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header; a weak W/ prefix still matches (GitHub's are weak)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _comment_id(pr: PRRecord, comment: CommentRecord, index: int) -> int:
    if comment.external_id.isdigit():
        return int(comment.external_id)
    return _stable_int(pr.repo, pr.number, comment.kind, index)


def _search_term(term: str) -> Callable[[RepoRecord], bool]:
    """One search term as a predicate: a qualifier (language:, license:, stars:, ...) or a word."""
    key, sep, value = term.partition(":")
    key, value = key.lower(), value.lower()
    if not sep:
        word = term.lower()
        return lambda r: word in r.full_name.lower() or word in r.description.lower()
    if key == "language":
        return lambda r: value == "go"  # a story holds Go repositories only
    if key == "license":
        return lambda r: r.license_spdx.lower() == value or (value == "other" and r.license_spdx == "NOASSERTION")
    if key == "stars":
        return _number_test(value, lambda r: r.stars)
    if key == "pushed":
        return _date_test(value, lambda r: r.pushed_at)
    if key == "fork":
        if value == "only":
            return lambda r: r.is_fork
        return lambda r: value == "true" or not r.is_fork
    if key == "archived":
        return lambda r: r.is_archived == (value == "true")
    if key in ("user", "org"):
        return lambda r: r.full_name.lower().startswith(value + "/")
    if key == "repo":
        return lambda r: r.full_name.lower() == value
    return lambda r: True  # qualifiers a story cannot answer (pushed:, topic:, ...) do not filter


def _number_test(spec: str, get: Callable[[RepoRecord], int]) -> Callable[[RepoRecord], bool]:
    match = re.fullmatch(r"(>=|<=|>|<)?(\d+)(?:\.\.(\d+))?", spec)
    if match is None:
        raise _HTTPError(422, f"Validation Failed: cannot read {spec!r} as a number range")
    op, low, high = match.group(1), int(match.group(2)), match.group(3)
    if high is not None:
        return lambda r: low <= get(r) <= int(high)
    compare = {">": int.__gt__, ">=": int.__ge__, "<": int.__lt__, "<=": int.__le__, None: int.__eq__}[op]
    return lambda r: compare(get(r), low)


def _date_test(spec: str, get: Callable[[RepoRecord], datetime | None]) -> Callable[[RepoRecord], bool]:
    """A date qualifier as GitHub reads it: DATE, >DATE, >=DATE, <DATE, <=DATE or DATE..DATE (YYYY-MM-DD, UTC)."""
    match = re.fullmatch(r"(>=|<=|>|<)?(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?", spec)
    if match is None:
        raise _HTTPError(422, f"Validation Failed: cannot read {spec!r} as a date range")
    op, low, high = match.group(1), date.fromisoformat(match.group(2)), match.group(3)

    def day(r: RepoRecord) -> date | None:
        moment = get(r)
        return None if moment is None else _aware(moment).astimezone(UTC).date()

    if high is not None:
        top = date.fromisoformat(high)
        return lambda r: (d := day(r)) is not None and low <= d <= top
    compare = {">": date.__gt__, ">=": date.__ge__, "<": date.__lt__, "<=": date.__le__, None: date.__eq__}[op]
    return lambda r: (d := day(r)) is not None and compare(d, low)


class _Handler(BaseHTTPRequestHandler):
    """One request: faults, auth, rate limit, route, ETag/304, pagination — in GitHub's order."""

    app: GitHubShapedServer
    protocol_version = "HTTP/1.1"  # keep-alive, so a client's session reuses its connection
    disable_nagle_algorithm = True  # headers and body go out as two writes; Nagle would hold the body ~40 ms
    timeout = 60

    def do_GET(self) -> None:
        self.app.track(+1)
        try:
            self._answer_get()
        finally:
            self.app.track(-1)

    def _answer_get(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}
        if self.app.git is not None and self.app.git.repository(path) is not None:
            return self._answer_git("GET", path, split.query, b"")
        if path == "/_hrgc/faults":
            return self._send_json(200, self.app.faults.as_dict())
        self.app.log(path)
        faults = self.app.faults
        if faults.delay:
            time.sleep(faults.delay)
        if faults.revoke_token or not self._authorized():
            return self._send_json(401, {"message": "Bad credentials", "documentation_url": DOCS_URL})
        if path == "/rate_limit":  # free: does not count
            return self._send_json(200, self.app.rate_limit_json())
        if faults.take("server_errors"):
            status = 502 if len(self.app.request_log) % 2 else 503
            return self._send_json(status, {"message": "Server Error"})
        if faults.take("secondary_limit"):
            extra = {} if faults.retry_after is None else {"Retry-After": str(faults.retry_after)}
            return self._send_json(403, {"message": SECONDARY_LIMIT_MESSAGE, "documentation_url": DOCS_URL}, extra)
        if self.app.limiter.state()[0] <= 0:
            with self.app._log_lock:
                self.app.rest_rate_limited += 1
            message = (
                "API rate limit exceeded. (But here's the good news: authenticated requests get a higher rate limit.)"
            )
            return self._send_json(403, {"message": message, "documentation_url": DOCS_URL})
        if faults.take("malformed"):
            self.app.spend_request()
            return self._send(200, b'{"message": "this body was cut sho', "application/json; charset=utf-8")
        try:
            body, items = self.app.route(path, query, raw="raw" in self.headers.get("Accept", ""))
        except _HTTPError as exc:
            self.app.spend_request()
            return self._send_json(exc.status, {"message": exc.message, "documentation_url": DOCS_URL})
        except Exception as exc:  # noqa: BLE001 — a bug here should read as a 500, not a dropped connection
            return self._send_json(500, {"message": f"server error: {type(exc).__name__}: {exc}"})
        link = None
        if items is not None:
            page, link = self.app.page(path, query, items)
            body = {**body, "items": page} if isinstance(body, dict) else page
        if isinstance(body, bytes):
            payload, content_type = body, "application/vnd.github.raw; charset=utf-8"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json; charset=utf-8"
        etag = f'"{hashlib.sha1(payload).hexdigest()}"'
        if etag in _etags(self.headers.get("If-None-Match", "")):
            return self._send(304, b"", None, {"ETag": etag})  # a 304 does not count against the limit
        self.app.spend_request()
        self._send(200, payload, content_type, {"ETag": etag, **({"Link": link} if link else {})})

    def do_POST(self) -> None:
        length = _int(self.headers.get("Content-Length"), 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        if self.app.git is not None and self.app.git.repository(split.path) is not None:
            return self._answer_git("POST", split.path, split.query, raw)
        if split.path in ("/graphql", "/api/graphql"):
            self.app.track(+1)
            try:
                return self._answer_graphql(raw)
            finally:
                self.app.track(-1)
        if split.path != "/_hrgc/faults":
            return self._send_json(404, {"message": "Not Found"})
        try:
            changes = json.loads(raw or b"{}")
        except ValueError as exc:
            return self._send_json(400, {"message": f"body is not JSON: {exc}"})
        if not isinstance(changes, dict):
            return self._send_json(400, {"message": 'send a JSON object, e.g. {"server_errors": 3}'})
        try:
            self.app.faults.update(changes)
        except ValueError as exc:
            return self._send_json(400, {"message": str(exc)})
        self._send_json(200, self.app.faults.as_dict())

    def _answer_graphql(self, raw: bytes) -> None:
        """POST /graphql in GitHub's order: auth, faults, parse and price, points, run."""
        from corpus.github import graphql_server

        app, faults = self.app, self.app.faults
        app.log("/graphql")
        if faults.delay:
            time.sleep(faults.delay)
        if faults.graphql_disabled:
            return self._send_json(404, {"message": "Not Found", "documentation_url": DOCS_URL})
        if faults.revoke_token or not self._authorized():
            return self._send_json(401, {"message": "Bad credentials", "documentation_url": DOCS_URL})
        if faults.take("server_errors"):
            return self._send_json(502, {"message": "Server Error"})
        if faults.take("secondary_limit"):
            extra = {} if faults.retry_after is None else {"Retry-After": str(faults.retry_after)}
            return self._send_json(403, {"message": SECONDARY_LIMIT_MESSAGE, "documentation_url": DOCS_URL}, extra)
        try:
            request = json.loads(raw or b"{}")
            query, variables = request["query"], request.get("variables") or {}
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return self._send_json(400, {"message": "Problems parsing JSON", "documentation_url": DOCS_URL})
        try:
            document, cost, nodes = graphql_server.prepare(query, variables)
        except graphql_server.QueryRefused as exc:
            return self._send_graphql(200, {"errors": exc.errors})
        remaining, reset = app.points.state()
        if remaining < cost:
            with app._log_lock:
                app.graphql_rate_limited += 1
            error = {"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}
            return self._send_graphql(200, {"errors": [error]})
        app.points.spend(cost)
        with app._log_lock:
            app.graphql_log.append(dict(variables))
            app.graphql_queries += 1
            app.graphql_points_spent += cost
        remaining, reset = app.points.state()
        rate_limit = {
            "cost": cost,
            "limit": app.points.limit,
            "nodeCount": nodes,
            "remaining": remaining,
            "resetAt": _iso(datetime.fromtimestamp(reset, tz=UTC)),
            "used": app.points.limit - remaining,
        }
        try:
            body = graphql_server.run(app, document, variables, rate_limit, break_one=faults.take("graphql_errors"))
        except Exception as exc:  # noqa: BLE001 — a bug here should read as a 500, not a dropped connection
            return self._send_json(500, {"message": f"server error: {type(exc).__name__}: {exc}"})
        self._send_graphql(200, body)

    def _send_graphql(self, status: int, body: Any) -> None:
        remaining, reset = self.app.points.state()
        rate = {
            "X-RateLimit-Limit": self.app.points.limit,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": reset,
            "X-RateLimit-Used": self.app.points.limit - remaining,
            "X-RateLimit-Resource": "graphql",
        }
        self._send_json(status, body, {k: str(v) for k, v in rate.items()})

    def _answer_git(self, method: str, path: str, query: str, body: bytes) -> None:
        """Git over HTTP: smart (git http-backend) or, with the git_dumb fault, static files only."""
        app, faults = self.app, self.app.faults
        app.log(path)
        with app._log_lock:
            app.git_requests += 1
            app.git_authorizations.append(self.headers.get("Authorization"))
        given = self.headers.get("Authorization")
        if app.token is not None and given is not None and not self._git_token_ok(given):
            return self._send_git(401, {"WWW-Authenticate": 'Basic realm="GitHub"'}, b"Bad credentials\n")
        if faults.take("git_server_errors"):
            return self._send_git(502, {"Content-Type": "text/plain"}, b"Server Error\n")
        if faults.git_dumb:
            if method != "GET":
                return self._send_git(403, {"Content-Type": "text/plain"}, b"smart HTTP is off\n")
            status, headers, payload = app.git.dumb(path)
            return self._send_git(status, headers, payload)
        status, headers, payload = app.git.smart(method, path, query, self.headers, body)
        cut = method == "POST" and len(payload) > 64 and b"PACK" in payload and faults.take("git_break_pack")
        self._send_git(status, headers, payload, cut=cut)

    def _git_token_ok(self, given: str) -> bool:
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        return value == self.app.token

    def _send_git(self, status: int, headers: dict[str, str], payload: bytes, *, cut: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = payload[: len(payload) // 2] if cut else payload
        self.wfile.write(sent)
        with self.app._log_lock:
            self.app.git_bytes_served += len(sent)
        if cut:
            self.wfile.flush()
            self.close_connection = True

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization")
        if self.app.token is None or given is None:
            return True  # like GitHub: no token is allowed (the real one gives a smaller limit)
        scheme, _, value = given.partition(" ")
        return scheme.lower() in ("bearer", "token") and value == self.app.token

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    def _send(self, status: int, payload: bytes, content_type: str | None, headers: dict[str, str] | None = None):
        remaining, reset = self.app.limiter.state()
        self.send_response(status)
        rate = {
            "X-RateLimit-Limit": self.app.limiter.limit,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": reset,
            "X-RateLimit-Used": self.app.limiter.limit - remaining,
            "X-RateLimit-Resource": "core",
        }
        for name, value in {**rate, **(headers or {})}.items():
            self.send_header(name, str(value))
        if status != 304:
            self.send_header("Content-Type", content_type or "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if status != 304:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if self.app.verbose:
            super().log_message(format, *args)


def local_story(repositories: dict[str, Path]) -> list[tuple[RepoRecord, list[PRRecord]]]:
    """The merged pull requests of local git repositories (owner/name -> path), read the way the
    local-clone import reads them (merge and squash commits), as a story to serve with those repositories."""
    from corpus.gitimport import iter_pull_requests, read_repository

    story = []
    for name, path in repositories.items():
        record = read_repository(path, name)
        story.append((record, list(iter_pull_requests(path, name))))
    return story


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the sample story over a GitHub-shaped REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="answer 401 to any other token")
    parser.add_argument("--rate-limit", type=int, default=5000)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--git", action="store_true", help="also serve the story as git repositories (GraphQL + git)")
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="OWNER/NAME=PATH",
        help="serve a local git repository instead of the sample: its merged PRs as the story, itself over git",
    )
    args = parser.parse_args(argv)
    import tempfile

    local = {}
    for spec in args.repo:
        name, sep, path = spec.partition("=")
        if not sep or "/" not in name or not path:
            parser.error(f"--repo wants OWNER/NAME=PATH, not {spec!r}")
        local[name.strip()] = Path(path).expanduser().resolve()
    if local:
        story, git_root = local_story(local), None
    else:
        from corpus.sample.story import sample_story  # only the CLI needs the sample

        story = sample_story()
        git_root = Path(tempfile.mkdtemp(prefix="hrgc-github-git-")) if args.git else None
    server = GitHubShapedServer(
        story,
        token=args.token,
        rate_limit=args.rate_limit,
        host=args.host,
        port=args.port,
        verbose=not args.quiet,
        git_root=git_root,
        git_repositories=local or None,
    )
    url = server.start()
    print(f"GitHub-shaped API on {url}  (e.g. curl {url}/search/repositories?q=language:go)")
    served = git_root or local
    print(f"GraphQL on {url}/graphql" + (f"; git on {url}/OWNER/NAME.git" if served else " (add --git for clones)"))
    print(f'faults: curl -X POST {url}/_hrgc/faults -d \'{{"server_errors": 3, "secondary_limit": 2}}\'')
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
