"""Repositories: names, rows created on request, what a fetcher learned about them, their fetch state."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from corpus.clone_locks import clone_for_dropping
from corpus.github.clones import drop_clone
from corpus.github.fetch import validate_full_name
from corpus.models import Repository, Source, full_name_validator
from corpus.records import RepoRecord
from corpus.services.ingest import clean_text


def validate_repository_name(name: str) -> str:
    """'owner/name' from a name or github.com URL; ValidationError-style ValueError otherwise."""
    full_name = validate_full_name(name)
    full_name_validator(full_name)
    return full_name


@transaction.atomic
def add_repositories(*, names: Iterable[str], source: str = Source.GITHUB) -> list[Repository]:
    """Create the repositories that are not there yet; returns every named repository, in order."""
    repositories = []
    for name in names:
        repository, _ = Repository.objects.get_or_create(full_name=name, defaults={"source": source})
        repositories.append(repository)
    return repositories


@transaction.atomic
def upsert_repository(*, record: RepoRecord, full_name: str | None = None, source: str = Source.GITHUB) -> Repository:
    """Store what a fetcher learned about a repository, keeping the person's include/exclude choice."""
    name = full_name or record.full_name
    repository, _ = Repository.objects.select_for_update().get_or_create(full_name=name, defaults={"source": source})
    repository.source = source
    repository.license_spdx = record.license_spdx[:64]
    repository.stars = record.stars
    repository.default_branch = record.default_branch[:200]
    repository.description = clean_text(record.description) or ""
    repository.is_fork = record.is_fork
    repository.is_archived = record.is_archived
    repository.provenance = record.provenance[:500]
    if record.head_commit:
        repository.provenance_commit = record.head_commit[:64]
    repository.save()
    return repository


@transaction.atomic
def set_repository_state(*, repository: Repository, state: str, message: str = "") -> None:
    Repository.objects.filter(pk=repository.pk).update(state=state, state_message=message[:500])
    repository.state, repository.state_message = state, message[:500]


def clones_root() -> Path:
    """Where fetch jobs keep the repositories' clones (one bare clone per repository)."""
    return Path(settings.DATA_DIR) / "clones"


def drop_repository_clone(*, repository: Repository) -> int:
    """Delete a repository's clone (the next fetch clones it again); returns the bytes freed.

    Refused (CloneInUse) while a fetch uses the clone; a fetch that starts meanwhile waits for the drop."""
    with clone_for_dropping(repository.full_name):
        freed = drop_clone(clones_root(), repository.full_name)
    Repository.objects.filter(pk=repository.pk).update(clone_bytes=None, clone_partial=False, cloned_at=None)
    return freed
