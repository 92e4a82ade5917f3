"""Reads of the corpus: the PR filter and search, records for serialization, statistics, diffs for display."""

from __future__ import annotations

from datetime import date, datetime, time

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.paginator import Paginator
from django.db.models import (
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property

from corpus.models import Category, Intent, PullRequest, Repository
from corpus.records import CommentRecord, FileRecord, PRRecord, SerializedRecord
from corpus.serialize import serialize
from corpus.services import SEARCH_CONFIG

FILTER_KEYS = (
    "q",
    "repo",
    "license",
    "category",
    "intent",
    "included",
    "syntax",
    "min_chars",
    "max_chars",
    "merged_from",
    "merged_to",
)
# Counting a filtered set stops here: an exact count of 100,000 rows on every page view is the slow part.
COUNT_CAP = 10_000


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _date(value) -> date | None:
    try:
        return date.fromisoformat(str(value).strip())
    except (TypeError, ValueError):
        return None


def clean_filters(params) -> dict[str, str]:
    """The known, valid filter values of a query dict (as strings, so they fit a URL and a snapshot's JSON)."""
    cleaned: dict[str, str] = {}
    get = params.get
    if q := (get("q") or "").strip():
        cleaned["q"] = q[:300]
    for key in ("repo", "license"):
        if value := (get(key) or "").strip():
            cleaned[key] = value[:140]
    if get("category") in Category.values:
        cleaned["category"] = get("category")
    if get("intent") in [*Intent.values, "none"]:
        cleaned["intent"] = get("intent")
    if get("included") in ("yes", "no"):
        cleaned["included"] = get("included")
    if get("syntax") in ("ok", "error", "unknown"):
        cleaned["syntax"] = get("syntax")
    for key in ("min_chars", "max_chars"):
        if _int(get(key)) is not None:
            cleaned[key] = str(_int(get(key)))
    for key in ("merged_from", "merged_to"):
        if _date(get(key)) is not None:
            cleaned[key] = _date(get(key)).isoformat()
    return cleaned


_FILTER_LABELS = {
    "q": "search",
    "repo": "repository",
    "license": "licence",
    "min_chars": "chars ≥",
    "max_chars": "chars ≤",
    "merged_from": "merged from",
    "merged_to": "merged to",
}


def describe_filter(filters: dict) -> str:
    """A filter as a person reads it: 'search "nil map", repository acme/web' (not its URL encoding)."""
    parts = []
    order = {key: index for index, key in enumerate(FILTER_KEYS)}
    for key, value in sorted(filters.items(), key=lambda item: order.get(item[0], len(order))):
        if key == "q":
            parts.append(f"search “{value}”")
        else:
            parts.append(f"{_FILTER_LABELS.get(key, key)} {value}")
    return ", ".join(parts) or "everything"


def included_q(prefix: str = "") -> Q:
    """In the training set: the PR is included and so is its repository."""
    return Q(**{f"{prefix}included": True, f"{prefix}repository__included": True})


def search_query(text: str) -> SearchQuery:
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


def filtered_pull_requests(filters: dict, *, force_included: bool = False, rank: bool = False) -> QuerySet:
    """PRs matching a cleaned filter; with `rank`, searches annotate `rank` (ts_rank of the query)."""
    filters = clean_filters(filters)
    queryset = PullRequest.objects.all()
    if "q" in filters:
        query = search_query(filters["q"])
        queryset = queryset.filter(search_vector=query)
        if rank:
            queryset = queryset.annotate(rank=SearchRank(F("search_vector"), query))
    if "repo" in filters:
        queryset = queryset.filter(repository__full_name=filters["repo"])
    if "license" in filters:
        value = "" if filters["license"] == "none" else filters["license"]
        queryset = queryset.filter(repository__license_spdx=value)
    if "category" in filters:
        queryset = queryset.filter(category=filters["category"])
    if "intent" in filters:
        queryset = queryset.filter(intent="" if filters["intent"] == "none" else filters["intent"])
    if force_included or filters.get("included") == "yes":
        queryset = queryset.filter(included_q())
    elif filters.get("included") == "no":
        queryset = queryset.exclude(included_q())
    syntax = filters.get("syntax")
    if syntax:
        queryset = queryset.filter(syntax_ok={"ok": True, "error": False, "unknown": None}[syntax])
    if "min_chars" in filters:
        queryset = queryset.filter(serialized_chars__gte=int(filters["min_chars"]))
    if "max_chars" in filters:
        queryset = queryset.filter(serialized_chars__lte=int(filters["max_chars"]))
    tz = timezone.get_current_timezone()
    if "merged_from" in filters:
        start = datetime.combine(date.fromisoformat(filters["merged_from"]), time.min, tz)
        queryset = queryset.filter(merged_at__gte=start)
    if "merged_to" in filters:
        end = datetime.combine(date.fromisoformat(filters["merged_to"]), time.max, tz)
        queryset = queryset.filter(merged_at__lte=end)
    return queryset


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (a LIMITed sub-select), so a huge filtered set costs a bounded scan.

    `count_is_capped` tells the page to say "10,000+" instead of an exact figure."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def count_is_capped(self) -> bool:
        return self.count > self.cap


def pull_request_record(pr: PullRequest, *, with_comments: bool = True) -> PRRecord:
    """The stored PR as the plain record the serializer takes (prefetch files/comments for many)."""
    files = [
        FileRecord(
            path=f.path,
            status=f.status,
            additions=f.additions,
            deletions=f.deletions,
            patch=f.patch,
            before=f.before_text,
            after=f.after_text,
            previous_path=f.previous_path,
            is_binary=f.is_binary,
            truncated_at=f.truncated_at,
        )
        for f in pr.files.all()
    ]
    comments = []
    if with_comments:
        comments = [
            CommentRecord(
                kind=c.kind,
                author=c.author,
                body=c.body,
                created_at=c.created_at,
                path=c.path,
                line=c.line,
                diff_hunk=c.diff_hunk,
                external_id=c.external_id,
            )
            for c in pr.comments.all()
        ]
    return PRRecord(
        repo=pr.repository.full_name,
        number=pr.number,
        title=pr.title,
        body=pr.body,
        author=pr.author,
        created_at=pr.opened_at,
        merged_at=pr.merged_at,
        base_commit=pr.base_commit,
        head_commit=pr.head_commit,
        merge_commit=pr.merge_commit,
        labels=list(pr.labels),
        files=files,
        comments=comments,
        source_url=pr.source_url,
    )


def serialized_record(record: PRRecord) -> SerializedRecord:
    """The training text of a PR: what the PR page shows and what a snapshot writes, by one call."""
    return serialize(record)


def diff_lines(patch: str) -> list[tuple[str, str]]:
    """(css class, line) for each line of a unified-diff patch: add, del, hunk or ''."""
    lines = []
    for line in patch.splitlines():
        if line.startswith("@@"):
            lines.append(("hunk", line))
        elif line.startswith("+"):
            lines.append(("add", line))
        elif line.startswith("-"):
            lines.append(("del", line))
        else:
            lines.append(("", line))
    return lines


def sections(record: SerializedRecord) -> list[tuple[str, str]]:
    """(section, text) pieces of a serialized record, in order, for marking them on the page."""
    return [(span.section, record.text[span.start : span.end]) for span in record.spans]


def _count_per_repository(**conditions) -> Subquery:
    counted = (
        PullRequest.objects.filter(repository=OuterRef("pk"), **conditions)
        .order_by()
        .values("repository")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def repository_list() -> QuerySet:
    """Repositories with their PR counts: one index-backed count per repository, not a join over every PR."""
    return Repository.objects.annotate(
        pr_count=_count_per_repository(), included_count=_count_per_repository(included=True)
    )


_STATS_SQL = """
WITH base AS (
    SELECT pr.repository_id, pr.category, pr.intent, r.license_spdx AS license, pr.syntax_ok, pr.serialized_chars,
           width_bucket(pr.serialized_chars, %(low)s, %(high)s, %(bins)s) AS bucket
    FROM corpus_pullrequest pr JOIN corpus_repository r ON r.id = pr.repository_id
    WHERE %(all)s OR (pr.included AND r.included)
)
SELECT GROUPING(repository_id), GROUPING(category), GROUPING(intent), GROUPING(license), GROUPING(syntax_ok),
       GROUPING(bucket), repository_id, category, intent, license, syntax_ok, bucket, count(*), sum(serialized_chars)
FROM base
GROUP BY GROUPING SETS ((repository_id), (category), (intent), (license), (syntax_ok), (bucket), ())
"""
_DIMENSIONS = ("repo", "category", "intent", "license", "syntax", "bucket")
LENGTH_BINS = 30


def corpus_stats(*, included_only: bool = True) -> dict:
    """Aggregates for the statistics page: every chart from one scan (GROUPING SETS), lengths bucketed in SQL."""
    from django.db import connection

    base = PullRequest.objects.filter(included_q()) if included_only else PullRequest.objects.all()
    bounds = base.aggregate(low=Min("serialized_chars"), high=Max("serialized_chars"))
    groups: dict[str, list[tuple]] = {name: [] for name in _DIMENSIONS}
    totals = {"prs": 0, "chars": 0, "repos": 0}
    if bounds["low"] is not None:
        low, high = bounds["low"], max(bounds["high"], bounds["low"] + LENGTH_BINS) + 1
        with connection.cursor() as cursor:
            cursor.execute(_STATS_SQL, {"low": low, "high": high, "bins": LENGTH_BINS, "all": not included_only})
            for row in cursor.fetchall():
                flags, values, count, chars = row[:6], row[6:12], row[12], row[13] or 0
                if all(flags):
                    totals = {"prs": count, "chars": chars, "repos": 0}
                    continue
                index = flags.index(0)
                groups[_DIMENSIONS[index]].append((values[index], count))
        totals["repos"] = len(groups["repo"])
    names = dict(Repository.objects.filter(pk__in=[pk for pk, _ in groups["repo"]]).values_list("id", "full_name"))
    repos = sorted(groups["repo"], key=lambda item: (-item[1], names.get(item[0], "")))[:50]

    def chart(name: str, label) -> dict:
        items = sorted(groups[name], key=lambda item: (-item[1], str(item[0])))
        return {"labels": [label(value) for value, _ in items], "values": [n for _, n in items]}

    histogram = {"edges": [], "counts": []}
    if bounds["low"] is not None:
        width = (high - low) / LENGTH_BINS
        counts = dict(groups["bucket"])
        histogram = {
            "edges": [round(low + (i + 0.5) * width) for i in range(LENGTH_BINS)],
            "counts": [counts.get(i + 1, 0) for i in range(LENGTH_BINS)],
            "width": width,
        }
    return {
        "totals": totals,
        "repos": {"labels": [names.get(pk, str(pk)) for pk, _ in repos], "values": [n for _, n in repos]},
        "category": chart("category", lambda v: v or "none"),
        "intent": chart("intent", lambda v: v or "none"),
        "license": chart("license", lambda v: v or "none"),
        "syntax": chart("syntax", lambda v: {True: "valid", False: "syntax error", None: "no Go code"}[v]),
        "length": histogram,
    }
