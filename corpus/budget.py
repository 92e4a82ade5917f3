"""GraphQL points shared through the database: every fetch worker that uses one token draws on one row."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import transaction

from corpus.github.client import normalize_api_url
from corpus.models import ApiBudget

# While nobody knows what is left (a new hour, a new token), one query at a time finds out.
UNKNOWN_WAIT = 0.5


def budget_key(api_url: str, token: str | None) -> str:
    return hashlib.sha256(f"{normalize_api_url(api_url)}\0{token or ''}".encode()).hexdigest()


class DatabaseBudget:
    """`corpus.github.graphql.PointBudget` on an ApiBudget row (row-locked reserve and settle)."""

    def __init__(self, api_url: str, token: str | None, *, now: Callable[[], float] = time.time):
        self.key = budget_key(api_url, token)
        self._now = now
        ApiBudget.objects.get_or_create(key=self.key)

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
        with transaction.atomic():
            row = ApiBudget.objects.select_for_update().get(key=self.key)
            row.reserved = max(0, row.reserved - reserved)
            row.points_spent += cost
            row.queries += 1 if cost else 0
            if remaining is not None:
                row.remaining, row.reset_at = remaining, _moment(reset_at) if reset_at else row.reset_at
            elif row.remaining is not None:
                row.remaining = max(0, row.remaining - cost)
            row.save()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
