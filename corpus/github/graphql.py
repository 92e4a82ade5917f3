"""A GitHub GraphQL client on top of the REST client's machinery (auth, retries, back-off, secondary limits).

Every query asks for `rateLimit { cost remaining resetAt }`; the client keeps the points it spent
and waits for the reset rather than send a query the hour's points cannot pay for. A shared
`budget` (see `PointBudget`) lets several workers draw on one token's points."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from corpus.github.client import (
    GitHubClient,
    GitHubError,
    MalformedResponse,
    RetriesExhausted,
    graphql_endpoint,
)

__all__ = ["GraphQLClient", "GraphQLError", "GraphQLResult", "GraphQLUnavailable", "PointBudget", "graphql_endpoint"]

RATE_LIMIT_FIELDS = "rateLimit { cost remaining resetAt }"
# GitHub's answer when the hour's points are spent is a 200 with this error type.
RATE_LIMITED = "RATE_LIMITED"


class GraphQLError(GitHubError):
    """The query failed as a whole: an `errors` array and no data."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


class GraphQLUnavailable(GitHubError):
    """The server has no GraphQL endpoint, or refuses it (404, 403 without a rate limit, 410)."""


class PointBudget(Protocol):
    """Points shared between workers that use one token (the database implements it for the jobs)."""

    def reserve(self, points: int) -> float:
        """Take `points` for one query; returns seconds to wait first (0 when the hour has them)."""

    def settle(self, reserved: int, cost: int, remaining: int | None, reset_at: float | None) -> None:
        """After the query: its real cost and GitHub's view of what is left."""


@dataclass
class GraphQLResult:
    """One answer: `data` (possibly partial), `errors` (GitHub's array, may be empty), and its price."""

    data: dict[str, Any]
    errors: list[dict] = field(default_factory=list)
    cost: int = 0
    remaining: int | None = None
    reset_at: float | None = None

    def error_paths(self) -> list[tuple]:
        return [tuple(error.get("path") or ()) for error in self.errors]


class GraphQLClient:
    """POSTs queries to the GraphQL endpoint derived from the REST client's base URL.

    Thread-safe like the REST client it wraps. `points_spent` / `queries_made` count what this
    client used; `remaining` / `reset_at` are GitHub's view as of the last answer."""

    def __init__(
        self,
        rest: GitHubClient,
        *,
        endpoint: str | None = None,
        budget: PointBudget | None = None,
        rate_limited_retries: int = 3,
    ):
        self.rest = rest
        self.endpoint = endpoint or graphql_endpoint(rest.base_url)
        self.budget = budget
        self.rate_limited_retries = rate_limited_retries
        self._lock = threading.Lock()
        self.queries_made = 0
        self.points_spent = 0
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.last_cost = 1

    def query(self, query: str, variables: dict[str, Any] | None = None, *, cost: int | None = None) -> GraphQLResult:
        """Run one query (which must select `rateLimit { cost remaining resetAt }` at its top level).

        Returns data with any errors beside it (partial data is the caller's to judge); raises
        GraphQLError when there is no data at all, GraphQLUnavailable when the endpoint is missing
        or refused, and the REST client's errors for HTTP failures it could not retry away. `cost`:
        the points the caller expects it to cost (reserved from a shared budget; default: the last cost)."""
        if "rateLimit" not in query:
            raise ValueError("a query must ask for rateLimit { cost remaining resetAt } so it can be paced")
        attempts = 0
        while True:
            reserved = max(1, cost if cost is not None else self.last_cost)
            self._pace(reserved)
            try:
                response = self.rest.post_json(self.endpoint, {"query": query, "variables": variables or {}})
            except GitHubError as exc:
                self._settle(reserved, 0, None, None)
                if exc.status in (404, 410) or (exc.status == 403 and not isinstance(exc, RetriesExhausted)):
                    raise GraphQLUnavailable(
                        f"GraphQL endpoint {self.endpoint} unavailable: {exc}", exc.status
                    ) from exc
                raise
            with self._lock:
                self.queries_made += 1
            body = response.data
            if not isinstance(body, dict):
                self._settle(reserved, 0, None, None)
                raise MalformedResponse(f"POST {self.endpoint}: expected a JSON object")
            errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
            data = body.get("data")
            spent, remaining, reset_at = _rate_limit(data, response.headers)
            self._settle(reserved, spent, remaining, reset_at)
            if any(e.get("type") == RATE_LIMITED for e in errors):
                attempts += 1
                if attempts > self.rate_limited_retries:
                    raise RetriesExhausted(f"GraphQL rate limit still spent after {attempts - 1} waits")
                # The REST client saw X-RateLimit-Remaining: 0 for "graphql" and waits before the next POST.
                continue
            if not isinstance(data, dict) or not data:
                message = "; ".join(str(e.get("message", "")) for e in errors) or "no data"
                raise GraphQLError(f"GraphQL query failed: {message}", errors)
            return GraphQLResult(data, errors, spent, remaining, reset_at)

    # --- pacing ---------------------------------------------------------------------------

    def _pace(self, points: int) -> None:
        """Wait for the reset when the last known remaining points cannot pay for the next query."""
        if self.budget is not None:
            while (wait := self.budget.reserve(points)) > 0:
                self.rest._wait(wait, f"GraphQL points shared by the workers: waiting {wait:.0f} s for the budget")
            return
        with self._lock:
            remaining, reset_at = self.remaining, self.reset_at
        if remaining is None or reset_at is None or remaining >= points:
            return
        wait = max(0.0, reset_at - self.rest._now()) + 1.0
        self.rest._wait(wait, f"GraphQL points: {remaining} left, waiting until the reset")

    def _settle(self, reserved: int, cost: int, remaining: int | None, reset_at: float | None) -> None:
        with self._lock:
            self.points_spent += cost
            if cost:
                self.last_cost = cost
            if remaining is not None:
                self.remaining, self.reset_at = remaining, reset_at
        if self.budget is not None:
            self.budget.settle(reserved, cost, remaining, reset_at)


def _rate_limit(data: Any, headers: Any) -> tuple[int, int | None, float | None]:
    """(cost, remaining, reset epoch) from the query's rateLimit, or from the headers without it."""
    limit = data.get("rateLimit") if isinstance(data, dict) else None
    if isinstance(limit, dict):
        reset = _epoch(limit.get("resetAt"))
        try:
            return int(limit.get("cost") or 0), int(limit["remaining"]), reset
        except (KeyError, TypeError, ValueError):
            pass
    try:
        remaining = int(headers.get("X-RateLimit-Remaining"))
        reset_header = float(headers.get("X-RateLimit-Reset"))
    except (TypeError, ValueError):
        return 0, None, None
    return 0, remaining, reset_header


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
