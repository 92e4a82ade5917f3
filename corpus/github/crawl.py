"""Finding many repositories: a GitHub search past its 1,000-result cap, sliced by stars."""

from __future__ import annotations

from collections.abc import Collection

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
) -> tuple[list[RepoRecord], int, str]:
    """Up to `limit` repositories matching `query`, most stars first: (found, total_count, note).

    GitHub answers at most 1,000 results a search; past that the search is asked again for the
    repositories with at most as many stars as the last one seen (`stars:<=N`), until `limit` is
    reached or a slice brings nothing new. `note` says when the slices could not reach everything."""
    if not query.strip():
        raise ValueError("the search query is empty")
    allowed = frozenset(allowed_licenses) if allowed_licenses is not None else None
    found: dict[str, RepoRecord] = {}
    total = None
    ceiling: int | None = None
    note = ""
    while len(found) < limit:
        sliced = query if ceiling is None else f"{query} stars:<={ceiling}"
        seen = 0
        new = 0
        lowest = None
        url: str | None = "/search/repositories"
        params: dict | None = {"q": sliced, "sort": "stars", "order": "desc", "per_page": 100}
        while url and len(found) < limit:
            response = client.get_json(url, params)
            data = response.data
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise MalformedResponse("GET /search/repositories: expected an object with 'items'")
            if total is None:
                total = int(data.get("total_count") or 0)
            for item in data["items"]:
                record = _repo_record(item, "GET /search/repositories")
                seen += 1
                lowest = record.stars if lowest is None else min(lowest, record.stars)
                if record.full_name in found:
                    continue
                if allowed is not None and not license_allowed(record.license_spdx, allowed):
                    continue
                found[record.full_name] = record
                new += 1
                if len(found) >= limit:
                    break
            url, params = response.next_url, None
        if seen < SEARCH_CAP or len(found) >= limit:
            break  # this slice was not cut off: nothing more to find
        if new == 0 or lowest is None or lowest == ceiling:
            note = f"more than {SEARCH_CAP} repositories have {lowest} stars; narrow the query to reach them"
            break
        ceiling = lowest
    return list(found.values())[:limit], total or 0, note
