"""Reads of the corpus: the PR filter and search, records for serialization, statistics, diffs for display."""

from __future__ import annotations

from datetime import date, datetime, time

from django.contrib.postgres.search import SearchRank
from django.core.paginator import Paginator
from django.db import connection
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
from corpus.plans import Plan
from corpus.records import CommentRecord, FileRecord, PRRecord, SerializedRecord
from corpus.search import search_query
from corpus.serialize import (
    DEFAULT_BUDGET,
    FORMAT_VERSION,
    Fitted,
    RecordParts,
    derive,
    serialize,
    split_records,
)

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


def filter_problems(params) -> dict[str, str]:
    """Why a filter value was not used, per filter key: a non-numeric size, a date that is no date, min above max.

    clean_filters drops bad values; the list shows these messages beside their fields instead of staying silent."""
    problems: dict[str, str] = {}
    get = params.get
    for key in ("min_chars", "max_chars"):
        raw = (get(key) or "").strip()
        if raw and _int(raw) is None:
            problems[key] = f"{_FILTER_LABELS[key]} needs a whole number of characters, 0 or more (not “{raw[:40]}”)"
    for key in ("merged_from", "merged_to"):
        raw = (get(key) or "").strip()
        if raw and _date(raw) is None:
            problems[key] = f"{_FILTER_LABELS[key]} needs a date as YYYY-MM-DD (not “{raw[:40]}”)"
    low, high = _int(get("min_chars")), _int(get("max_chars"))
    if low is not None and high is not None and low > high:
        problems["max_chars"] = f"chars ≥ {low:,} is above chars ≤ {high:,}: nothing can match"
    start, end = _date(get("merged_from")), _date(get("merged_to"))
    if start is not None and end is not None and start > end:
        problems["merged_to"] = f"merged from {start} is after merged to {end}: nothing can match"
    return problems


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


def filtered_pull_requests(filters: dict, *, force_included: bool = False, rank: bool = False) -> QuerySet:
    """PRs matching a cleaned filter; with `rank`, searches annotate `rank` (ts_rank of the query)."""
    filters = clean_filters(filters)
    queryset = PullRequest.objects.all()
    if "q" in filters:
        query = search_query(filters["q"])
        number = filters["q"].strip().removeprefix("#")
        # "4010" or "#4010" also finds pull request 4010 (of any repository), as GitHub's search box does.
        matches = Q(search_vector=query) | (Q(number=int(number)) if number.isdigit() and len(number) < 10 else Q())
        queryset = queryset.filter(matches)
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


def stored_plan_and_parts(pr: PullRequest) -> tuple[Plan, RecordParts]:
    """The plan and record parts stored at ingest. A row from before they were stored (or in an
    older format) gets them computed once here and saved, so no later view parses its files again."""
    if pr.record_format == FORMAT_VERSION and pr.plan is not None and pr.record_parts is not None:
        return Plan.from_json(pr.plan), RecordParts.from_json(pr.record_parts)
    from corpus.services.ingest import clean_json

    plan, parts = derive(pull_request_record(pr))
    PullRequest.objects.filter(pk=pr.pk).update(
        plan=clean_json(plan.to_json()), record_parts=clean_json(parts.to_json()), record_format=FORMAT_VERSION
    )
    pr.plan, pr.record_parts, pr.record_format = plan.to_json(), parts.to_json(), FORMAT_VERSION
    return plan, parts


def page_records(parts: RecordParts) -> Fitted:
    """The records the PR page shows: cut to the default budget, tokens estimated from characters
    (the dataset cuts again with its own tokenizer and sequence length)."""
    return split_records(parts, DEFAULT_BUDGET)


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
    SELECT pr.repository_id, pr.category, pr.intent, pr.syntax_ok, pr.serialized_chars,
           width_bucket(ln(greatest(pr.serialized_chars, 1)), ln(%(low)s), ln(%(high)s), %(bins)s) AS bucket,
           to_char(date_trunc('month', pr.merged_at), 'YYYY-MM') AS month
    FROM corpus_pullrequest pr JOIN corpus_repository r ON r.id = pr.repository_id
    WHERE %(all)s OR (pr.included AND r.included)
)
SELECT GROUPING(repository_id), GROUPING(category), GROUPING(intent), GROUPING(syntax_ok),
       GROUPING(bucket), GROUPING(month), repository_id, category, intent, syntax_ok, bucket, month,
       count(*), sum(serialized_chars)
FROM base
GROUP BY GROUPING SETS ((repository_id), (category), (intent), (syntax_ok), (bucket), (month), ())
"""
_DIMENSIONS = ("repo", "category", "intent", "syntax", "bucket", "month")
LENGTH_BINS = 30
EXCLUSION_REASONS = 15  # the most frequent reasons shown; the rest are summed as "other reasons"


def curation_event_pull_requests(event_ids: list[int], *, limit: int) -> dict[int, list[PullRequest]]:
    """The first `limit` pull requests of each curation event (the keys of its `previous` states), read in SQL:
    a bulk event's `previous` can hold 100,000 entries, and the page names a few of them."""
    from django.db import connection

    if not event_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.id, k.pr_id FROM corpus_curationevent e CROSS JOIN LATERAL "
            "(SELECT key::bigint AS pr_id FROM jsonb_object_keys(e.previous) AS key ORDER BY key::bigint LIMIT %s) k "
            "WHERE e.id = ANY(%s)",
            [limit, list(event_ids)],
        )
        pairs = cursor.fetchall()
    prs = (
        PullRequest.objects.select_related("repository")
        .only("id", "number", "title", "repository__full_name")
        .in_bulk({pr_id for _, pr_id in pairs})
    )
    result: dict[int, list[PullRequest]] = {}
    for event_id, pr_id in pairs:
        if pr_id in prs:
            result.setdefault(event_id, []).append(prs[pr_id])
    return result


def _reason_kind(reason: str) -> str:
    """A reason as the chart counts it: every "near duplicate of owner/name#N" is one bar, "near duplicate"."""
    if not reason:
        return "no reason"
    for kind in ("exact duplicate", "near duplicate"):
        if reason.startswith(kind + " of "):
            return kind
    return reason


def exclusion_reasons() -> dict:
    """Why pull requests are out of the training set: each PR's own reason, or its repository's exclusion."""
    counts: dict[str, int] = {}
    for row in PullRequest.objects.filter(included=False).values("excluded_reason").annotate(n=Count("*")):
        label = _reason_kind(row["excluded_reason"])
        counts[label] = counts.get(label, 0) + row["n"]
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    labels = [label for label, _ in rows[:EXCLUSION_REASONS]]
    values = [n for _, n in rows[:EXCLUSION_REASONS]]
    rest = sum(n for _, n in rows[EXCLUSION_REASONS:])
    if rest:
        labels.append("other reasons")
        values.append(rest)
    by_repository = PullRequest.objects.filter(included=True, repository__included=False).count()
    if by_repository:
        labels.append("repository excluded")
        values.append(by_repository)
    return {"labels": labels, "values": values}


def corpus_stats(*, included_only: bool = True) -> dict:
    """Aggregates for the statistics page: every chart from one scan (GROUPING SETS), lengths bucketed in SQL.

    Lengths are bucketed on a log scale (a few huge PRs would squeeze every other one into the first bar)."""
    base = PullRequest.objects.filter(included_q()) if included_only else PullRequest.objects.all()
    bounds = base.aggregate(low=Min("serialized_chars"), high=Max("serialized_chars"))
    groups: dict[str, list[tuple]] = {name: [] for name in _DIMENSIONS}
    totals = {"prs": 0, "chars": 0, "repos": 0}
    if bounds["low"] is not None:
        low = max(1, bounds["low"])
        high = max(bounds["high"], low * 2) + 1
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

    histogram = {"edges": [], "counts": [], "lower": [], "upper": []}
    if bounds["low"] is not None:
        import math

        step = (math.log(high) - math.log(low)) / LENGTH_BINS
        counts = dict(groups["bucket"])
        # width_bucket puts values below `low` in bucket 0 (none here) and the top one in bucket LENGTH_BINS.
        histogram = {
            "edges": [round(math.exp(math.log(low) + (i + 0.5) * step)) for i in range(LENGTH_BINS)],
            "lower": [round(math.exp(math.log(low) + i * step)) for i in range(LENGTH_BINS)],
            "upper": [round(math.exp(math.log(low) + (i + 1) * step)) for i in range(LENGTH_BINS)],
            "counts": [counts.get(i + 1, 0) + (counts.get(0, 0) if i == 0 else 0) for i in range(LENGTH_BINS)],
        }
    months = sorted((month, n) for month, n in groups["month"] if month)
    undated = sum(n for month, n in groups["month"] if not month)
    return {
        "totals": totals,
        "repos": {"labels": [names.get(pk, str(pk)) for pk, _ in repos], "values": [n for _, n in repos]},
        "category": chart("category", lambda v: v or "none"),
        "intent": chart("intent", lambda v: v or "none"),
        "syntax": chart("syntax", lambda v: {True: "valid", False: "syntax error", None: "no Go code"}[v]),
        "length": histogram,
        "months": {"labels": [month for month, _ in months], "values": [n for _, n in months], "undated": undated},
        "exclusions": exclusion_reasons(),
    }
