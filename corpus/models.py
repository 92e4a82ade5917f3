"""The stored corpus: repositories, merged pull requests, their files and discussion, fetch jobs, snapshots."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from hrgc_site.models import BackgroundJob

FULL_NAME_RE = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
full_name_validator = RegexValidator(FULL_NAME_RE, "Use owner/name, e.g. golang/go (letters, digits, - . _).")


class Source(models.TextChoices):
    GITHUB = "github", "GitHub API"
    GIT = "git", "local git clone"


class Category(models.TextChoices):
    NAT = "NAT", "NAT (natural language)"
    MIX = "MIX", "MIX (text with code)"
    CODE = "CODE", "CODE (code only)"


class Intent(models.TextChoices):
    FIX = "FIX", "fix"
    ADD = "ADD", "add"
    REFACTOR = "REFACTOR", "refactor"
    OPTIMIZE = "OPTIMIZE", "optimize"


def allowed_github_hosts() -> list[str]:
    """Hosts the GitHub client may reach even at internal addresses: HRGC_GITHUB_ALLOWED_HOSTS and the
    host of GITHUB_API_URL (both set by whoever runs the server, not by a dashboard user)."""
    from urllib.parse import urlsplit

    hosts = list(settings.HRGC_GITHUB_ALLOWED_HOSTS)
    env_host = urlsplit(settings.GITHUB_API_URL).hostname
    return [*hosts, env_host] if env_host else hosts


class GitHubSettings(models.Model):
    """The one row of fetch settings an operator can change in the UI; the environment gives defaults."""

    api_url = models.URLField(max_length=300, blank=True, help_text="Blank: GITHUB_API_URL or https://api.github.com")
    token = models.CharField(max_length=300, blank=True, help_text="Stored server-side, never shown again")
    # The API base URL the token was entered for: the token is sent there and nowhere else.
    token_api_url = models.CharField(max_length=300, blank=True)
    allowed_licenses = models.CharField(
        max_length=500,
        default="MIT,Apache-2.0,BSD-2-Clause,BSD-3-Clause,GPL-2.0,GPL-3.0,LGPL-3.0",
        help_text="Comma-separated SPDX ids; repositories with another, unknown or no licence are skipped.",
    )
    go_only = models.BooleanField(default=True, help_text="Keep only pull requests that change .go files")
    concurrency = models.PositiveSmallIntegerField(default=4)
    max_file_bytes = models.PositiveIntegerField(default=1_000_000)

    class Meta:
        verbose_name_plural = "GitHub settings"

    @classmethod
    def load(cls) -> GitHubSettings:
        return cls.objects.get_or_create(pk=1)[0]

    def save(self, *args, **kwargs):
        """A token is bound to the API it was entered for; changing the API URL drops a token bound elsewhere,
        so a new base URL never receives the token entered for the old one (it must be entered again)."""
        from corpus.github.client import same_api

        stored = type(self).objects.filter(pk=self.pk).values("token").first() if self.pk else None
        if self.token and (stored is None or stored["token"] != self.token):
            self.token_api_url = self.effective_api_url
        elif self.token and not same_api(self.effective_api_url, self.token_api_url or ""):
            self.token, self.token_api_url = "", ""
        if not self.token:
            self.token_api_url = ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "token", "token_api_url"}
        super().save(*args, **kwargs)

    @property
    def effective_api_url(self) -> str:
        return (self.api_url or settings.GITHUB_API_URL).rstrip("/")

    @property
    def effective_token(self) -> str:
        """The token the configured API gets (see token_for)."""
        return self.token_for(self.effective_api_url)

    def token_for(self, api_url: str) -> str:
        """The token for requests to `api_url`: the stored one only if it was entered for that same API,
        else GITHUB_TOKEN only for GITHUB_API_URL (both set by whoever runs the server), else none."""
        from corpus.github.client import same_api

        if self.token and self.token_api_url and same_api(api_url, self.token_api_url):
            return self.token
        if settings.GITHUB_TOKEN and same_api(api_url, settings.GITHUB_API_URL):
            return settings.GITHUB_TOKEN
        return ""

    def client(self, api_url: str = "", token: str | None = None, *, trusted_url: bool = False, **options):
        """A GitHub client for `api_url` (default: the configured one) that carries only its own token and
        refuses internal addresses that are not allow-listed. `trusted_url`: the URL came from whoever runs
        the server (`fetch_github --api-url`), so its host is allowed too."""
        from urllib.parse import urlsplit

        from corpus.github.client import GitHubClient

        url = (api_url or self.effective_api_url).rstrip("/")
        hosts = allowed_github_hosts()
        if trusted_url and urlsplit(url).hostname:
            hosts.append(urlsplit(url).hostname)
        return GitHubClient(url, token or self.token_for(url) or None, allowed_hosts=hosts, **options)

    @property
    def allowed_license_list(self) -> list[str]:
        return [s.strip() for s in self.allowed_licenses.split(",") if s.strip()]


class Repository(models.Model):
    class State(models.TextChoices):
        NEW = "new", "not fetched yet"
        OK = "ok", "ok"
        MISSING = "missing", "missing (404)"
        LICENSE = "license", "skipped: licence"
        ERROR = "error", "error"

    full_name = models.CharField(max_length=140, unique=True, validators=[full_name_validator])
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.GITHUB)
    license_spdx = models.CharField("licence", max_length=64, blank=True)
    stars = models.PositiveIntegerField(default=0)
    default_branch = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    is_fork = models.BooleanField(default=False)
    is_archived = models.BooleanField(default=False)
    included = models.BooleanField(default=True)
    excluded_reason = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    state_message = models.CharField(max_length=500, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    provenance = models.CharField(max_length=500, blank=True, help_text="API URL or clone path")
    provenance_commit = models.CharField(max_length=64, blank=True)
    # Incremental fetches: only PRs updated since the last complete fetch, and the list's ETag.
    pulls_updated_since = models.DateTimeField(null=True, blank=True)
    pulls_etag = models.CharField(max_length=200, blank=True)
    # GraphQL: the page cursor of a pass not finished yet (a killed worker resumes there).
    pulls_cursor = models.CharField(max_length=300, blank=True)
    # The clone in the data directory that the code is read from (GraphQL + git fetches).
    clone_bytes = models.BigIntegerField(null=True, blank=True, help_text="Disk use of the clone; null: no clone")
    clone_partial = models.BooleanField(default=False)
    cloned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["full_name"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.full_name

    def get_absolute_url(self) -> str:
        return reverse("corpus:repository", args=[self.pk])


class FetchJob(BackgroundJob):
    kind = models.CharField(max_length=8, choices=Source.choices, default=Source.GITHUB)
    targets = ArrayField(models.CharField(max_length=500), default=list, help_text="owner/name list, or a clone path")
    git_repo_name = models.CharField(max_length=140, blank=True)
    repos_total = models.PositiveIntegerField(default=0)
    repos_done = models.PositiveIntegerField(default=0)
    prs_new = models.PositiveIntegerField(default=0)
    prs_updated = models.PositiveIntegerField(default=0)
    prs_skipped = models.PositiveIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    api_requests = models.PositiveIntegerField(default=0)
    rate_limit_remaining = models.IntegerField(null=True, blank=True)
    rate_limit_reset = models.DateTimeField(null=True, blank=True)
    waiting_until = models.DateTimeField(null=True, blank=True)
    errors = models.JSONField(default=dict, blank=True, help_text="repository -> error message")
    api_url = models.CharField(max_length=300, blank=True, help_text="Blank: the GitHub settings' API URL")
    build_sample = models.BooleanField(default=False, help_text="Build the bundled sample repositories first")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # How the job reads GitHub: "GraphQL + git", or REST and why (GraphQL refused, a clone failed).
    method = models.CharField(max_length=300, blank=True)
    graphql_points = models.PositiveIntegerField(default=0)
    git_bytes = models.BigIntegerField(default=0)
    # Per repository of a crawl: {"owner/name": {"state", "prs", "points", "requests", "git_bytes", "method"}}.
    repo_progress = models.JSONField(default=dict, blank=True)

    status_url_name = "corpus:fetchjob_progress"
    card_extra_template = "corpus/_fetchjob_live.html"
    dead_hint = "Worker silent — retry? (no heartbeat for over 90 s: the worker may have been killed)"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"fetch #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("corpus:fetchjob", args=[self.pk])


class PullRequest(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="pull_requests")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=1000)
    body = models.TextField(blank=True)
    author = models.CharField(max_length=200, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    base_commit = models.CharField(max_length=64, blank=True)
    head_commit = models.CharField(max_length=64, blank=True)
    merge_commit = models.CharField(max_length=64, blank=True)
    labels = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    category = models.CharField(max_length=4, choices=Category.choices, blank=True, db_index=True)
    intent = models.CharField(
        max_length=10,
        choices=Intent.choices,
        blank=True,
        db_index=True,
        help_text="Blank when no intent can be told from the text or the change",
    )
    included = models.BooleanField(default=True, db_index=True)
    excluded_reason = models.CharField(max_length=500, blank=True)
    quality_flags = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    syntax_ok = models.BooleanField(null=True, db_index=True)
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    serialized_chars = models.PositiveIntegerField(default=0, db_index=True)
    additions = models.PositiveIntegerField(default=0)
    deletions = models.PositiveIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    comment_count = models.PositiveIntegerField(default=0)
    source_url = models.CharField(max_length=500, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)
    fetch_job = models.ForeignKey(FetchJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # GitHub's updated_at of the PR when it was stored: a retried fetch skips PRs it already has.
    source_updated_at = models.DateTimeField(null=True, blank=True)
    # sha256 of the record as fetched: re-ingesting the same record writes nothing.
    source_hash = models.CharField(max_length=64, blank=True)
    duplicate_reason = models.CharField(max_length=500, blank=True)
    # Set once a person includes/excludes the PR; automatic rules (quality, duplicates) leave it alone then.
    curated_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    # MinHash of the stored Go files' text (quality.minhash_signature) as NUM_PERM little-endian uint32s,
    # so dedupe_corpus need not re-read and re-hash every PR. NULL: not computed yet; b"": no identifiers.
    minhash_signature = models.BinaryField(null=True, blank=True, editable=False)
    # sha256 of the exact text the signature was made from: a re-ingest with the same code keeps it.
    # (db_default: raw COPY/INSERTs that name only the older columns, e.g. bench/, still work.)
    minhash_text_hash = models.CharField(max_length=64, blank=True, editable=False, default="", db_default="")
    # Computed once at ingest (parsing a hostile file must not happen on every page view): the plan
    # (corpus.plans.Plan.to_json) and the record parts (corpus.serialize.RecordParts.to_json) in format
    # `record_format`; 0 means not computed yet (rows ingested before they were kept).
    plan = models.JSONField(null=True, blank=True, editable=False)
    record_parts = models.JSONField(null=True, blank=True, editable=False)
    record_format = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-merged_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "number"], name="unique_pr_number_per_repository"),
            models.CheckConstraint(condition=Q(number__gte=1), name="pr_number_positive"),
            models.CheckConstraint(condition=Q(included=True) | ~Q(excluded_reason=""), name="excluded_pr_has_reason"),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="pr_search_gin"),
            models.Index(fields=["repository", "-merged_at"], name="pr_repo_merged"),
            models.Index(fields=["-merged_at", "-id"], name="pr_merged_id"),
            models.Index(fields=["included", "-merged_at", "-id"], name="pr_included_merged_id"),
            models.Index(fields=["repository", "included"], name="pr_repo_included"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.full_name}#{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("corpus:pullrequest", args=[self.pk])


class FileChange(models.Model):
    pull_request = models.ForeignKey(PullRequest, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1000)
    previous_path = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=16, default="modified")
    additions = models.PositiveIntegerField(default=0)
    deletions = models.PositiveIntegerField(default=0)
    patch = models.TextField(blank=True)
    before_text = models.TextField(null=True, blank=True)
    after_text = models.TextField(null=True, blank=True)
    is_go = models.BooleanField(default=False)
    is_test = models.BooleanField(default=False)
    is_vendored = models.BooleanField(default=False)
    is_generated = models.BooleanField(default=False)
    is_binary = models.BooleanField(default=False)
    truncated_at = models.PositiveIntegerField(null=True, blank=True, help_text="The size cap (bytes) that cut it")

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["pull_request", "path"], name="unique_file_per_pr")]

    def __str__(self) -> str:
        return self.path


class Comment(models.Model):
    class Kind(models.TextChoices):
        ISSUE = "issue", "comment"
        REVIEW = "review", "review"
        REVIEW_COMMENT = "review_comment", "review comment"

    pull_request = models.ForeignKey(PullRequest, on_delete=models.CASCADE, related_name="comments")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    external_id = models.CharField(max_length=100)
    author = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    line = models.IntegerField(null=True, blank=True)
    diff_hunk = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pull_request", "kind", "external_id"], name="unique_comment_per_pr"),
        ]


class CurationEvent(models.Model):
    """One include/exclude decision over one or many PRs, kept so it can be read and undone."""

    action = models.CharField(max_length=8, choices=[("include", "include"), ("exclude", "exclude")])
    reason = models.CharField(max_length=500, blank=True)
    scope = models.CharField(max_length=1000, blank=True, help_text="The filter or selection it applied to")
    previous = models.JSONField(default=dict, help_text="pr id -> [included, excluded_reason] before the change")
    count = models.PositiveIntegerField(default=0)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]


class Snapshot(BackgroundJob):
    """A frozen, counted, hashed copy of the included corpus; every later artefact names one."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Letters, digits, dot, dash and underscore.")],
    )
    description = models.TextField(blank=True)
    filter = models.JSONField(default=dict, blank=True, help_text="The corpus filter that made it")
    pr_count = models.PositiveIntegerField(default=0)
    repo_count = models.PositiveIntegerField(default=0)
    chars = models.PositiveBigIntegerField(default=0)
    no_intent_count = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # corpus.serialize.FORMAT_VERSION of its lines: 1 (whole files) for snapshots frozen before it was recorded.
    record_format = models.PositiveSmallIntegerField(default=1, db_default=1, editable=False)
    pull_requests = models.ManyToManyField(PullRequest, related_name="snapshots", blank=True)

    status_url_name = "corpus:snapshot_progress"
    card_id = "snap"
    dead_hint = "Worker silent — the snapshot job may have been killed; create it again under a new name."

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("corpus:snapshot", args=[self.pk])


class ApiBudget(models.Model):
    """One token's hourly GraphQL points, shared by every fetch worker through this row.

    A worker reserves a query's points before it sends it (row lock), and settles with the real cost
    and GitHub's `remaining` after; a reservation the hour cannot pay waits for the reset. So two
    workers never spend the same hour's points twice."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of the API URL and the token")
    resource = models.CharField(max_length=16, default="graphql")
    remaining = models.IntegerField(null=True, blank=True, help_text="GitHub's last word, less reservations since")
    reserved = models.IntegerField(default=0, help_text="Points of queries in flight")
    reset_at = models.DateTimeField(null=True, blank=True)
    points_spent = models.BigIntegerField(default=0)
    queries = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.resource} budget {self.key[:8]}: {self.remaining} left"


class CrawlRepository(models.Model):
    """One repository of a fetch job, worked on by one worker at a time: several workers share a crawl.

    A worker takes the next queued row (SELECT … FOR UPDATE SKIP LOCKED), beats on it while it works,
    and marks it done or failed. A row whose worker went silent for HRGC_HEARTBEAT_DEAD_AFTER is
    taken over by another worker, which resumes the repository from its saved cursor and its clone."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        WORKING = "working", "working"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        STOPPED = "stopped", "stopped"

    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, related_name="crawl_rows")
    position = models.PositiveIntegerField()
    target = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    worker = models.CharField(max_length=128, blank=True, help_text="host:pid of the worker on it (last one)")
    claims = models.PositiveSmallIntegerField(
        default=0, help_text="Times taken; over 1: taken over from a silent worker"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="unique_crawl_position")]
        indexes = [models.Index(fields=["job", "state", "position"], name="crawl_job_state")]

    def __str__(self) -> str:
        return f"{self.target} in fetch #{self.job_id}: {self.state}"
