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
        "host": socket.gethostname(),
        "pid": os.getpid(),
        # To the second: the System page shows it to a person, not to a profiler.
        "at": timezone.localtime().replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S %Z"),
        "database": version.split(" on ")[0],
    }
