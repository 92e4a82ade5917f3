"""Finding many repositories: a GitHub search past its 1,000-result cap, sliced by stars, then by date."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

from corpus.github.client import GitHubClient, MalformedResponse
from corpus.github.fetch import _repo_record
from corpus.licenses import license_allowed
from corpus.records import RepoRecord

SEARCH_CAP = 1000  # GitHub returns at most the first 1,000 results of any search


def search_sliced(
    client: GitHubClient,
    query: str,
    *,
    limit: int = 1000,
    allowed_licenses: Collection[str] | None = None,
    today: date | None = None,
) -> tuple[list[RepoRecord], int, str]:
    """Up to `limit` repositories matching `query`, most stars first: (found, total_count, note).

    GitHub answers at most 1,000 results a search; past that the search is asked again for the
    repositories with at most as many stars as the last one seen (`stars:<=N`), until `limit` is
    reached or a slice brings nothing new. Where more than 1,000 repositories share one star count,
    that count is sliced by last push (`stars:N pushed:A..B`, halving the dates until each slice is
    under the cap). `note` says when even that could not reach everything."""
    if not query.strip():
        raise ValueError("the search query is empty")
    allowed = frozenset(allowed_licenses) if allowed_licenses is not None else None
    found: dict[str, RepoRecord] = {}
    totals: list[int] = []
    ceiling: int | None = None
    note = ""

    def add(record: RepoRecord) -> bool:
        if record.full_name in found:
            return False
        if allowed is not None and not license_allowed(record.license_spdx, allowed):
            return False
        found[record.full_name] = record
        return True

    while len(found) < limit:
        sliced = query if ceiling is None else f"{query} stars:<={ceiling}"
        seen, new, lowest = _read_slice(client, sliced, add, limit, found, totals)
        if seen < SEARCH_CAP or len(found) >= limit:
            break  # this slice was not cut off: nothing more to find
        if lowest is None:
            break
        if new == 0 or lowest == ceiling:
            # More than 1,000 repositories have `lowest` stars: take that star count by date, then go below it.
            note = _by_date(client, f"{query} stars:{lowest}", add, limit, found, today or datetime.now(UTC).date())
            if note or lowest == 0:
                break
            ceiling = lowest - 1
            continue
        ceiling = lowest
    return list(found.values())[:limit], (totals[0] if totals else 0), note


def _read_slice(client, query, add, limit, found, totals) -> tuple[int, int, int | None]:
    """Every page of one search (up to the cap): (results seen, new ones kept, lowest star count seen)."""
    seen = new = 0
    lowest = None
    url: str | None = "/search/repositories"
    params: dict | None = {"q": query, "sort": "stars", "order": "desc", "per_page": 100}
    while url and len(found) < limit:
        response = client.get_json(url, params)
        data = response.data
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise MalformedResponse("GET /search/repositories: expected an object with 'items'")
        totals.append(int(data.get("total_count") or 0))
        for item in data["items"]:
            record = _repo_record(item, "GET /search/repositories")
            seen += 1
            lowest = record.stars if lowest is None else min(lowest, record.stars)
            if add(record):
                new += 1
                if len(found) >= limit:
                    break
        url, params = response.next_url, None
    return seen, new, lowest


FIRST_DAY = date(2008, 1, 1)  # GitHub opened in 2008: nothing was pushed before


def _by_date(client, query: str, add, limit: int, found: dict, today: date) -> str:
    """Every repository of `query` (one star count) by ranges of last push, each under the cap; a note
    when a single day holds more than 1,000 of them."""
    ranges = [(FIRST_DAY, today)]
    while ranges and len(found) < limit:
        low, high = ranges.pop(0)
        response = client.get_json(
            "/search/repositories",
            {"q": f"{query} pushed:{low.isoformat()}..{high.isoformat()}", "sort": "stars", "per_page": 1},
        )
        data = response.data
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise MalformedResponse("GET /search/repositories: expected an object with 'items'")
        total = int(data.get("total_count") or 0)
        if total == 0:
            continue
        if total > SEARCH_CAP:
            if low == high:
                return f"more than {SEARCH_CAP} repositories match {query} pushed:{low}; narrow the query to reach them"
            middle = low + timedelta(days=(high - low).days // 2)
            ranges[:0] = [(low, middle), (middle + timedelta(days=1), high)]
            continue
        _read_slice(client, f"{query} pushed:{low.isoformat()}..{high.isoformat()}", add, limit, found, [])
    return ""
