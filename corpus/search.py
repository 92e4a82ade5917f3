"""Full-text search of pull requests: the text search configuration and the vector the GIN index holds.

The index is `pr_search_gin` on PullRequest.search_vector (corpus/models.py); ingest writes the vector,
the selectors query it, both with SEARCH_CONFIG."""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Value

SEARCH_CONFIG = "english"


def search_text_for_paths(paths: list[str]) -> str:
    # "internal/server.go" also as "internal server go", so a search for "server" finds it.
    return " ".join(
        f"{path} {path.rsplit('/', 1)[-1]} {path.replace('/', ' ').replace('.', ' ').replace('_', ' ')}"
        for path in paths
    )


def pull_request_vector(*, title: str, body: str, paths: list[str], comments: str) -> SearchVector:
    """Title weighs most (A), then body and file paths (B), then the discussion (C)."""
    return (
        SearchVector(Value(title), weight="A", config=SEARCH_CONFIG)
        + SearchVector(Value(body), weight="B", config=SEARCH_CONFIG)
        + SearchVector(Value(search_text_for_paths(paths)), weight="B", config=SEARCH_CONFIG)
        + SearchVector(Value(comments[:200_000]), weight="C", config=SEARCH_CONFIG)
    )


# A hyphen between two word characters joins words ("nil-pointer"); websearch_to_tsquery would turn such a word
# into a phrase of its compound and its parts, which text written "nil pointer" never matches.
_JOINING_HYPHEN = re.compile(r"(?<=\w)[-‐‑–](?=\w)")


def normalize_search(text: str) -> str:
    """The search as PostgreSQL should read it: 'nil-pointer' finds what 'nil pointer' finds."""
    return _JOINING_HYPHEN.sub(" ", text)


def search_query(text: str) -> SearchQuery:
    return SearchQuery(normalize_search(text), search_type="websearch", config=SEARCH_CONFIG)
