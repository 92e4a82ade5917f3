"""Site-level worker tasks."""

import os
import socket

from django.db import connection
from django.utils import timezone


def ping() -> dict:
    """Answer from a worker: who ran it, when, and that it reached the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
    return {
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "at": timezone.now().isoformat(),
        "database": version.split(" on ")[0],
    }
