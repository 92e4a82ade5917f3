"""Everything a fresh data directory needs before the first request: schema, cache table, roles, an admin."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from hrgc_site.roles import OPERATORS, ensure_groups


def prepare_database(verbosity: int = 0) -> None:
    call_command("migrate", interactive=False, verbosity=verbosity)
    call_command("createcachetable", verbosity=verbosity)
    ensure_groups()


# pg_advisory_lock key: one process at a time migrates a database (two commands started at once on a fresh one).
MIGRATE_LOCK = 0x48524743  # "HRGC"


def ensure_schema() -> bool:
    """Migrate the database when migrations are unapplied (a fresh data dir, a newer checkout); True if it did."""

    def unapplied() -> bool:
        executor = MigrationExecutor(connection)
        return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))

    if not unapplied():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
        try:
            if not unapplied():  # another process migrated it while this one waited
                return False
            prepare_database()
            return True
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])


def ensure_admin(username: str = "admin") -> str | None:
    """Create the first admin when no superuser exists; return the password only when one was made.

    The password comes from HRGC_ADMIN_PASSWORD, else it is generated and shown once."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = os.environ.get("HRGC_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email="", password=password)
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name=OPERATORS))
    return password
