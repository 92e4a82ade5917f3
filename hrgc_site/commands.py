"""The base of the pipeline's management commands: a database nobody has set up is set up first."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from hrgc_site.bootstrap import ensure_schema


class PipelineCommand(BaseCommand):
    """A command of the README's pipeline (`import_git`, `snapshot`, `train`, ...).

    A command run first on a fresh data directory (or an empty DATABASE_URL) starts the embedded
    PostgreSQL, which then holds no tables; it migrates them as `make run` would, instead of failing
    with `relation ... does not exist`. On a database that is up to date this costs one look at the
    migration table."""

    def execute(self, *args, **options):
        if ensure_schema():
            self.stderr.write("The database had no tables yet (first use): migrated it.")
        return super().execute(*args, **options)
