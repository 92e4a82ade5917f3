"""Each rank of a torchrun launch leaves a heartbeat and its own log in the run directory, for the run page."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RANKS_DIR = "ranks"
BEAT_SECONDS = 2.0  # a rank rewrites its heartbeat file at most this often
SILENT_AFTER = 60.0  # a running rank unheard of for this long shows as silent on the run page
LOG_BYTES = 512 * 1024  # a rank's log is cut back to its newest half past this size


class RankLog:
    """One rank's heartbeat (`ranks/rank-N.json`) and log (`ranks/rank-N.log`): every event the engine reports on
    this rank, rank 0's and the quiet ranks' alike, and a beat at every stop check (once per optimizer step)."""

    def __init__(self, out_dir: Path, rank: int, local_rank: int, world_size: int):
        self.directory = Path(out_dir) / RANKS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.status_path = self.directory / f"rank-{rank}.json"
        self.log_path = self.directory / f"rank-{rank}.log"
        self.status: dict[str, Any] = {
            "rank": rank,
            "local_rank": local_rank,
            "world_size": world_size,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "step": None,
            "state": "running",
        }
        self._last_beat = 0.0
        self.beat(force=True)

    def wrap_report(self, report: Callable[[str, dict], None]) -> Callable[[str, dict], None]:
        def logged(kind: str, payload: dict) -> None:
            self.log(kind, payload)
            report(kind, payload)

        return logged

    def wrap_stop(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        def beating() -> bool:
            self.beat()
            return should_stop()

        return beating

    def log(self, kind: str, payload: dict) -> None:
        if kind == "metrics":
            self.status["step"] = payload.get("step")
        line = f"{time.strftime('%H:%M:%S')} {kind} {json.dumps(payload, default=str)[:400]}\n"
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line)
            size = handle.tell()
        if size > LOG_BYTES:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            self.log_path.write_text(text[len(text) // 2 :].split("\n", 1)[-1], encoding="utf-8")
        self.beat(force=kind == "metrics")

    def beat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_beat < BEAT_SECONDS:
            return
        self._last_beat = now
        self.status["updated"] = now
        temp = self.status_path.with_name(f".{self.status_path.name}.tmp")
        temp.write_text(json.dumps(self.status), encoding="utf-8")
        os.replace(temp, self.status_path)

    def finish(self, state: str) -> None:
        self.status["state"] = state
        self.beat(force=True)


def read_ranks(out_dir: Path, log_lines: int = 8, now: float | None = None) -> list[dict[str, Any]]:
    """Every rank's last heartbeat, how many seconds ago, whether it is silent, and its newest log lines."""
    directory = Path(out_dir) / RANKS_DIR
    now = time.time() if now is None else now
    ranks = []
    for path in directory.glob("rank-*.json"):
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        status["age"] = max(0.0, now - float(status.get("updated", 0.0)))
        status["silent"] = status.get("state") == "running" and status["age"] > SILENT_AFTER
        status["log"] = _tail(path.with_suffix(".log"), log_lines)
        ranks.append(status)
    return sorted(ranks, key=lambda status: status.get("rank", 0))


def clear_ranks(out_dir: Path) -> None:
    """A new launch starts with no ranks listed: an earlier launch's (perhaps of another world size) are gone."""
    for path in (Path(out_dir) / RANKS_DIR).glob("rank-*"):
        path.unlink(missing_ok=True)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 200 * lines - 4096))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
