"""An hour's GitHub budget shared through the database: every fetch worker that uses one token draws on one row.

Two buckets per token: GraphQL points ("graphql") and REST requests ("core", 5,000 an hour on
github.com; a request costs one, a 304 nothing). A worker reserves before it sends (row lock) and
settles with GitHub's own count after, so two workers never spend the same hour twice."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import connection, transaction

from corpus.github.client import normalize_api_url
from corpus.models import ApiBudget

# While nobody knows what is left (a new hour, a new token), one query at a time finds out.
UNKNOWN_WAIT = 0.5


def budget_key(api_url: str, token: str | None, resource: str = "graphql") -> str:
    suffix = "" if resource == "graphql" else f"\0{resource}"
    return hashlib.sha256(f"{normalize_api_url(api_url)}\0{token or ''}{suffix}".encode()).hexdigest()


class DatabaseBudget:
    """`corpus.github.graphql.PointBudget` / `corpus.github.client.RequestBudget` on an ApiBudget row
    (row-locked reserve and settle). `resource`: "graphql" (points) or "core" (REST requests).

    Safe to call from a REST fetch's pool threads: a thread other than the one that made the budget
    closes its database connection after each call (the pool's threads must not keep them open)."""

    def __init__(
        self, api_url: str, token: str | None, *, resource: str = "graphql", now: Callable[[], float] = time.time
    ):
        self.key = budget_key(api_url, token, resource)
        self.resource = resource
        self._now = now
        self._home = threading.current_thread()
        ApiBudget.objects.get_or_create(key=self.key, defaults={"resource": resource})

    def _done(self) -> None:
        if threading.current_thread() is not self._home:
            connection.close()

    def row(self) -> ApiBudget:
        return ApiBudget.objects.get(key=self.key)

    def observe(self, remaining: int | None, reset_at: float | None) -> None:
        """GitHub's count from a free /rate_limit call, taken when the row knows nothing newer."""
        if remaining is None or reset_at is None:
            return
        with transaction.atomic():
            row = ApiBudget.objects.select_for_update().get(key=self.key)
            if row.remaining is None or row.reset_at is None or row.reset_at.timestamp() <= self._now():
                row.remaining, row.reset_at = remaining, _moment(reset_at)
                row.save(update_fields=["remaining", "reset_at", "updated_at"])

    def reserve(self, points: int) -> float:
        try:
            return self._reserve(points)
        finally:
            self._done()

    def _reserve(self, points: int) -> float:
        with transaction.atomic():
            row = ApiBudget.objects.select_for_update().get(key=self.key)
            now = self._now()
            if row.reset_at is not None and row.reset_at.timestamp() <= now:
                row.remaining, row.reset_at = None, None  # a new hour: unknown until the next answer
            if row.remaining is None:
                if row.reserved > 0:
                    return UNKNOWN_WAIT
            elif row.remaining - row.reserved < points:
                if row.reserved > 0 and row.remaining >= points:
                    return UNKNOWN_WAIT  # others' queries in flight will settle soon
                return max(UNKNOWN_WAIT, (row.reset_at.timestamp() - now) if row.reset_at else UNKNOWN_WAIT) + 1.0
            row.reserved += points
            row.save(update_fields=["remaining", "reset_at", "reserved", "updated_at"])
            return 0.0

    def settle(self, reserved: int, cost: int, remaining: int | None, reset_at: float | None) -> None:
        try:
            self._settle(reserved, cost, remaining, reset_at)
        finally:
            self._done()

    def _settle(self, reserved: int, cost: int, remaining: int | None, reset_at: float | None) -> None:
        with transaction.atomic():
            row = ApiBudget.objects.select_for_update().get(key=self.key)
            row.reserved = max(0, row.reserved - reserved)
            row.points_spent += cost
            row.queries += 1 if cost else 0
            if remaining is not None:
                moment = _moment(reset_at) if reset_at else row.reset_at
                same_hour = (
                    row.remaining is not None
                    and row.reset_at is not None
                    and moment is not None
                    and abs((moment - row.reset_at).total_seconds()) < 2
                )
                # Answers to requests in flight together arrive in any order: within one hour the
                # count only goes down, so an older, higher count never gives back what others spent.
                row.remaining = min(row.remaining, remaining) if same_hour else remaining
                row.reset_at = moment
            elif row.remaining is not None:
                row.remaining = max(0, row.remaining - cost)
            row.save()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
