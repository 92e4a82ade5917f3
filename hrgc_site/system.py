"""What the System page reports: database, worker clusters, task queue, torch and device, disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone


def database_info() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), pg_database_size(current_database())")
        version, size = cursor.fetchone()
    embedded = not os.environ.get("DATABASE_URL")
    return {
        "engine": connection.vendor,
        "version": version.split(" on ")[0],
        "name": connection.settings_dict["NAME"],
        "where": f"embedded (pgserver, {settings.DATA_DIR / 'pgdata'})" if embedded else "DATABASE_URL",
        "size": size,
    }


def human_duration(seconds: float) -> str:
    """'45 s', '12 min 5 s', '3 h 20 min', '2 d 4 h': the two largest units, as a person reads an uptime."""
    seconds = max(0, int(seconds))
    for big, big_size, small, small_size in (("d", 86_400, "h", 3_600), ("h", 3_600, "min", 60), ("min", 60, "s", 1)):
        if seconds >= big_size:
            whole, rest = divmod(seconds, big_size)
            part = rest // small_size
            return f"{whole} {big}" + (f" {part} {small}" if part else "")
    return f"{seconds} s"


def cluster_info() -> list[dict]:
    """Live django-q2 clusters (their sentinels publish stats into the shared cache every few seconds)."""
    from django_q.brokers import get_broker
    from django_q.status import Stat

    clusters = []
    for stat in Stat.get_all(get_broker()):
        clusters.append(
            {
                "id": str(stat.cluster_id),
                "host": stat.host,
                "status": stat.status,
                "workers": len(stat.workers),
                "worker_pids": sorted(stat.workers),
                "uptime": int(stat.uptime()),
                "uptime_text": human_duration(stat.uptime()),
                "started": stat.tob.replace(microsecond=0) if stat.tob else None,
                "pid": stat.pid,
            }
        )
    return clusters


def task_counts() -> dict:
    from django_q.models import Failure, OrmQ, Success

    now = timezone.now()
    return {
        "queued": OrmQ.objects.filter(lock__lte=now).count(),
        "running": OrmQ.objects.filter(lock__gt=now).count(),
        "succeeded": Success.objects.count(),
        "failed": Failure.objects.count(),
        "recent_failures": list(Failure.objects.order_by("-stopped")[:5].values("name", "func", "stopped", "result")),
    }


def torch_info() -> dict:
    import torch

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "devices": [],
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["devices"].append({"name": props.name, "memory": props.total_memory})
    info["summary"] = (
        ("ROCm " + info["hip"] if info["hip"] else "CUDA " + str(info["cuda"]))
        if info["devices"]
        else ("MPS" if info["mps"] else f"CPU ({os.cpu_count()} cores)")
    )
    return info


def directory_size(path: Path) -> int:
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def disk_info() -> dict:
    """Sizes under the data dir; walking big folders is slow, so a minute-old answer is fine."""
    from django.core.cache import cache

    info = cache.get("hrgc:disk_info")
    if info is None:
        info = _measure_disk()
        cache.set("hrgc:disk_info", info, 60)
    return info


def _measure_disk() -> dict:
    data_dir = settings.DATA_DIR
    usage = shutil.disk_usage(data_dir)
    parts = {}
    for name in ("pgdata", "snapshots", "tokenizers", "datasets", "runs", "exports"):
        sub = data_dir / name
        parts[name] = directory_size(sub) if sub.exists() else 0
    return {"data_dir": str(data_dir), "used": sum(parts.values()), "parts": parts, "free": usage.free}
