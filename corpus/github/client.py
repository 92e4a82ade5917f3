"""A thread-safe GitHub REST client that honours the primary and secondary rate limits and retries faults."""

from __future__ import annotations

import email.utils
import ipaddress
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests

API_VERSION = "2022-11-28"
JSON_MEDIA_TYPE = "application/vnd.github+json"
RAW_MEDIA_TYPE = "application/vnd.github.raw"
USER_AGENT = "hrgc-corpus"

# GitHub's advice for a secondary limit without Retry-After: wait at least a minute, back off.
SECONDARY_LIMIT_MIN_WAIT = 60.0
SECONDARY_LIMIT_MAX_WAIT = 15 * 60.0
# X-RateLimit-Reset is whole epoch seconds on GitHub's clock; one second of slack absorbs rounding and skew.
RESET_MARGIN = 1.0

# Failures of the connection itself (including a body cut off mid-read) are worth another try.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class GitHubError(Exception):
    """Any answer from GitHub we cannot use; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TokenRejected(GitHubError):
    """401: the token is wrong, expired or revoked. Retrying cannot help."""


class NotFound(GitHubError):
    """404: the repository, pull request or file does not exist (or the token cannot see it)."""


class Forbidden(GitHubError):
    """403 that is not a rate limit (e.g. access blocked)."""


class MalformedResponse(GitHubError):
    """The body is not valid JSON or not the shape the endpoint documents."""


class RetriesExhausted(GitHubError):
    """Server errors, connection errors or rate limits persisted past `max_retries`."""


class UnsafeURL(GitHubError):
    """The API base URL is not http(s), or it names an internal address that is not allow-listed."""


MAX_REDIRECTS = 5
_ERROR_MESSAGE_CHARS = 200


def same_api(url_a: str, url_b: str) -> bool:
    """Two API base URLs are the same API: scheme, host, port and path (no trailing slash) all agree."""
    return normalize_api_url(url_a) == normalize_api_url(url_b)


def normalize_api_url(url: str) -> str:
    parts = urlsplit((url or "").strip())
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"


def check_api_url(url: str, allowed_hosts: Iterable[str] = (), *, unresolvable_ok: bool = False) -> None:
    """Refuse a base URL that is not http(s) or whose host resolves to a loopback, private, link-local or
    otherwise non-public address, unless the host is in `allowed_hosts` (HRGC_GITHUB_ALLOWED_HOSTS)
    (`unresolvable_ok`: a name that does not resolve now passes; the client checks again before sending):
    the dashboard must not become a way to reach the machines around it."""
    parts = urlsplit((url or "").strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("the API base URL must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise UnsafeURL("the API base URL must not carry a user name or password")
    host = parts.hostname.lower()
    if host in {h.strip().lower() for h in allowed_hosts if h.strip()}:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        if unresolvable_ok:
            return  # nothing to reach now; the client checks again before its first request
        raise UnsafeURL(f"cannot resolve {host}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise UnsafeURL(
                f"{host} is an internal address; allow it with HRGC_GITHUB_ALLOWED_HOSTS if it is your GitHub"
            )


@dataclass
class Response:
    """One successful (or 304) answer. `data` is parsed JSON; `content` the raw bytes for raw requests."""

    status: int
    data: Any
    etag: str | None
    headers: Mapping[str, str]
    next_url: str | None = None
    content: bytes = b""
    truncated: bool = False  # a raw body cut at the caller's max_bytes

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class _Retry:
    wait: float
    reason: str


class GitHubClient:
    """GET-only GitHub REST client. Safe to share between threads (one requests.Session per thread).

    `on_wait(seconds, reason)` is called (from whichever thread is waiting) before every sleep,
    so a job can show "rate limit: waiting until 14:05" instead of looking stuck."""

    def __init__(
        self,
        base_url: str = "https://api.github.com",
        token: str | None = None,
        *,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        on_wait: Callable[[float, str], None] | None = None,
        timeout: float = 30,
        allowed_hosts: Iterable[str] | None = None,
        request_budget: RequestBudget | None = None,
    ):
        """`allowed_hosts`: when given, the base URL is checked with `check_api_url` before the first
        request (internal addresses refused unless listed). The token only ever goes to `base_url`:
        links and redirects elsewhere are refused, not followed. `request_budget`: the hour's "core"
        requests shared with other workers on the same token (every REST request but /rate_limit,
        search and GraphQL reserves one there first and settles it with the X-RateLimit headers)."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        self._checked = self.allowed_hosts is None
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self._sleep = sleep
        self._now = now
        self._on_wait = on_wait
        self._random = random.Random()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self.request_budget = request_budget
        self.requests_made = 0
        self.wait_count = 0
        self.waited_seconds = 0.0
        # resource ("core", "search", ...) -> (remaining, reset epoch seconds)
        self._limits: dict[str, tuple[int, int]] = {}

    # --- public API -------------------------------------------------------------------

    @property
    def rate_limit_remaining(self) -> int | None:
        """Requests left in the core bucket as of the last response (None before the first)."""
        with self._lock:
            limit = self._limits.get("core")
        return None if limit is None else limit[0]

    @property
    def rate_limit_reset(self) -> int | None:
        """Epoch second at which the core bucket refills (None before the first response)."""
        with self._lock:
            limit = self._limits.get("core")
        return None if limit is None else limit[1]

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, etag: str | None = None) -> Response:
        """GET a JSON endpoint. With `etag`, a 304 comes back as `Response(status=304, data=None)`."""
        headers = {"Accept": JSON_MEDIA_TYPE}
        if etag:
            headers["If-None-Match"] = etag
        http, body, _ = self._request(path, params, headers, max_bytes=None)
        etag_out = http.headers.get("ETag")
        if http.status_code == 304:
            return Response(304, None, etag_out or etag, http.headers, None)
        return Response(http.status_code, self._parse_json(path, body), etag_out, http.headers, self._next_link(http))

    def get_raw(self, path: str, params: Mapping[str, Any] | None = None, *, max_bytes: int | None = None) -> Response:
        """GET a body with the raw media type (file contents). Reads at most `max_bytes` + 1 bytes."""
        http, body, truncated = self._request(path, params, {"Accept": RAW_MEDIA_TYPE}, max_bytes=max_bytes)
        return Response(http.status_code, None, http.headers.get("ETag"), http.headers, None, body, truncated)

    def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Yield every item of a list endpoint, following `Link: rel="next"` (100 per page).

        Search endpoints wrap their list in `{"items": [...]}`; both shapes are accepted."""
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        url: str | None = path
        while url:
            response = self.get_json(url, query)
            items = response.data
            if isinstance(items, dict) and isinstance(items.get("items"), list):
                items = items["items"]
            if not isinstance(items, list):
                raise MalformedResponse(f"GET {path}: expected a JSON list, got {type(items).__name__}")
            yield from items
            url, query = response.next_url, None  # the next link carries the whole query

    def post_json(self, url: str, body: Any) -> Response:
        """POST a JSON body (GraphQL) with the same retries, limits and back-off as a GET.

        `url` is under the API base or is its GraphQL endpoint (see `graphql_endpoint`)."""
        http, raw, _ = self._request(url, None, {"Accept": JSON_MEDIA_TYPE}, max_bytes=None, json_body=body)
        return Response(http.status_code, self._parse_json(url, raw), None, http.headers, None)

    def rate_limit(self) -> dict:
        """GET /rate_limit (free: it does not count against the limit)."""
        data = self.get_json("/rate_limit").data
        if not isinstance(data, dict) or "resources" not in data:
            raise MalformedResponse("GET /rate_limit: expected an object with 'resources'")
        return data

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # --- one request, with retries ----------------------------------------------------

    def _request(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        *,
        max_bytes: int | None,
        json_body: Any = None,
    ) -> tuple[requests.Response, bytes, bool]:
        if not self._checked:
            check_api_url(self.base_url, self.allowed_hosts or ())
            self._checked = True
        url = self._url(path)
        method = "GET" if json_body is None else "POST"
        if url == graphql_endpoint(self.base_url):
            resource = "graphql"
        else:
            resource = "search" if "/search/" in url[len(self.base_url) :] else "core"
        shared = self.request_budget if resource == "core" and not url.endswith("/rate_limit") else None
        retries = redirects = 0
        while True:
            self._wait_while_limit_spent(resource)
            if shared is not None:
                while (wait := shared.reserve(1)) > 0:
                    self._wait(wait, f"REST requests shared by the workers: waiting {wait:.0f} s for the budget")
            http = None
            try:
                with self._lock:
                    self.requests_made += 1
                http = self._session().request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                )
                if http.is_redirect:
                    # Followed by hand, and only inside the API: a redirect must not carry the token
                    # (or the request) to another host.
                    http.close()
                    if method != "GET":
                        raise GitHubError(f"{method} {path}: redirected; not followed", http.status_code)
                    url, params = self._redirect_target(path, url, http.headers.get("Location", "")), None
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise GitHubError(f"GET {path}: too many redirects", http.status_code)
                    continue
                body, truncated = self._read_body(http, max_bytes)
            except TRANSIENT_ERRORS as exc:
                retry = self._backoff(retries, f"connection error ({type(exc).__name__})")
            else:
                self._track_limits(http.headers)
                retry = self._classify(path, http, body, retries)
                if retry is None:
                    return http, body, truncated
            finally:
                if shared is not None:
                    _settle_request(shared, http)
            if retries >= self.max_retries:
                raise RetriesExhausted(
                    f"{method} {path}: gave up after {self.max_retries} retries; last: {retry.reason}"
                )
            retries += 1
            self._wait(retry.wait, retry.reason)

    def _classify(self, path: str, http: requests.Response, body: bytes, retries: int) -> _Retry | None:
        """None for a usable answer (2xx/304); a _Retry to wait and try again; raises for fatal answers."""
        status = http.status_code
        if status < 300 or status == 304:
            return None
        message = _error_message(body)
        if status == 401:
            raise TokenRejected("token rejected", status)
        if status == 404:
            raise NotFound(f"not found: GET {path}", status)
        if status in (403, 429):
            retry_after = _parse_retry_after(http.headers.get("Retry-After"), self._now())
            if retry_after is not None:
                return _Retry(retry_after, f"secondary rate limit: retrying after {retry_after:g} s")
            if http.headers.get("X-RateLimit-Remaining") == "0" and http.headers.get("X-RateLimit-Reset"):
                reset = int(http.headers["X-RateLimit-Reset"])
                return _Retry(self._seconds_until(reset), f"rate limit: waiting until {_clock(reset)}")
            if status == 429 or "rate limit" in message.lower():
                wait = min(SECONDARY_LIMIT_MIN_WAIT * 2**retries, SECONDARY_LIMIT_MAX_WAIT)
                return _Retry(wait, f"secondary rate limit: backing off {wait:g} s")
            raise Forbidden(f"forbidden: GET {path}: {message or 'no message'}", status)
        if status >= 500:
            return self._backoff(retries, f"server error {status}")
        raise GitHubError(f"GET {path}: HTTP {status}: {message or 'no message'}", status)

    def _backoff(self, retries: int, what: str) -> _Retry:
        # Full jitter: threads that failed together do not retry together.
        wait = self._random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**retries))
        return _Retry(wait, f"{what}: retry {retries + 1}/{self.max_retries} in {wait:.1f} s")

    def _wait_while_limit_spent(self, resource: str) -> None:
        """Known-spent bucket: wait for the reset before sending, rather than spend a request on a 403."""
        with self._lock:
            limit = self._limits.get(resource)
        if limit is None or limit[0] > 0:
            return
        wait = self._seconds_until(limit[1])
        if wait > RESET_MARGIN:
            self._wait(wait, f"rate limit: waiting until {_clock(limit[1])}")

    def _seconds_until(self, reset: int) -> float:
        return max(0.0, reset - self._now()) + RESET_MARGIN

    def _wait(self, seconds: float, reason: str) -> None:
        with self._lock:
            self.wait_count += 1
            self.waited_seconds += seconds
        if self._on_wait is not None:
            self._on_wait(seconds, reason)
        self._sleep(seconds)

    def _track_limits(self, headers: Mapping[str, str]) -> None:
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            value = (int(remaining), int(reset))
        except ValueError:
            return  # a garbled header must not break the request that carried it
        with self._lock:
            self._limits[headers.get("X-RateLimit-Resource", "core")] = value

    # --- plumbing ---------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"User-Agent": USER_AGENT, "X-GitHub-Api-Version": API_VERSION})
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # Only follow links back to the API we were given: the token must not travel elsewhere.
            if not path.startswith(self.base_url + "/") and path != graphql_endpoint(self.base_url):
                raise MalformedResponse(f"refusing to follow a link outside {self.base_url}: {path}")
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _redirect_target(self, path: str, current: str, location: str) -> str:
        target = urljoin(current, location)
        if not target.startswith(self.base_url + "/"):
            raise GitHubError(f"GET {path}: redirected outside {self.base_url}; not followed")
        return target

    def _next_link(self, http: requests.Response) -> str | None:
        return http.links.get("next", {}).get("url")

    @staticmethod
    def _read_body(http: requests.Response, max_bytes: int | None) -> tuple[bytes, bool]:
        try:
            if max_bytes is None:
                return http.content, False
            chunks, size = [], 0
            for chunk in http.iter_content(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:  # stop downloading a 50 MB file once we know it is over the cap
                    return b"".join(chunks)[:max_bytes], True
            return b"".join(chunks), False
        finally:
            http.close()

    @staticmethod
    def _parse_json(path: str, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            # The body itself is not repeated: the server may not be GitHub, and the message is shown to users.
            raise MalformedResponse(f"GET {path}: response is not valid JSON ({type(exc).__name__})") from None


class RequestBudget(Protocol):
    """An hour's requests (or points) shared by every worker on one token (corpus.budget implements it)."""

    def reserve(self, points: int) -> float:
        """Take `points` before sending; returns seconds to wait first (0: go ahead)."""

    def settle(self, reserved: int, cost: int, remaining: int | None, reset_at: float | None) -> None:
        """After the answer: what it really cost, and GitHub's count of what is left (None: no answer)."""


def _settle_request(budget: RequestBudget, http: requests.Response | None) -> None:
    """A REST request's reservation settled: a 304 (free on GitHub) or no answer costs nothing; the
    X-RateLimit headers of the "core" bucket are GitHub's word on what is left."""
    if http is None:
        budget.settle(1, 0, None, None)
        return
    cost = 0 if http.status_code == 304 else 1
    remaining = reset = None
    if http.headers.get("X-RateLimit-Resource", "core") == "core":
        try:
            remaining = int(http.headers["X-RateLimit-Remaining"])
            reset = float(http.headers["X-RateLimit-Reset"])
        except (KeyError, TypeError, ValueError):
            remaining = reset = None
    budget.settle(1, cost, remaining, reset)


def graphql_endpoint(base_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST base URL.

    https://api.github.com -> https://api.github.com/graphql; Enterprise https://HOST/api/v3 ->
    https://HOST/api/graphql; anything else (the loopback server) -> BASE/graphql."""
    base = base_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/v3") + "/graphql"
    return base + "/graphql"


def _error_message(body: bytes) -> str:
    """GitHub's JSON `message`, cut short; nothing from a body that is not GitHub's error shape."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = data.get("message", "") if isinstance(data, dict) else ""
    if not isinstance(message, str):
        return ""
    return " ".join(message.split())[:_ERROR_MESSAGE_CHARS]


def _parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After is delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _clock(epoch: int) -> str:
    return time.strftime("%H:%M", time.localtime(epoch))
