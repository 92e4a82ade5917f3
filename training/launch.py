"""Launching a run on several processes (and nodes) with torchrun, and following it from the worker.

The worker starts `python -m torch.distributed.run ... -m training.engine` (torchrun's elastic agent, c10d
rendezvous), reads rank 0's JSON event lines from its stdout into the same `report` an in-process run
uses, and asks to stop by creating the stop file every rank checks after each step (the ranks agree
through an all-reduce, so they stop at the same step with one checkpoint). torchrun's own output and
every rank's stderr go to `torchrun.log` in the run directory; each rank's heartbeat and log are under
`ranks/` (training/ranks.py). The torchrun process dies with the worker (PR_SET_PDEATHSIG on Linux), so a
killed worker leaves no ranks training behind while the run is marked dead and resumed elsewhere.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.hrm.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
STOP_FILE = "STOP"
CONFIG_FILE = "config.json"
LOG_FILE = "torchrun.log"


def world_size(config: RunConfig) -> int:
    return config.train.nproc_per_node * config.train.nnodes


def is_distributed(config: RunConfig) -> bool:
    return world_size(config) > 1


def torchrun_command(
    config: RunConfig, dataset_dir: Path, out_dir: Path, rdzv_id: str, *, samples: bool = True
) -> list[str]:
    """The command every node runs (the same on each; c10d rendezvous assigns node ranks). One node without
    a rendezvous address runs standalone (a local rendezvous on a free port)."""
    t = config.train
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(t.nnodes)]
    if t.nnodes == 1 and not t.rdzv_endpoint:
        command += ["--standalone"]
    else:
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", t.rdzv_endpoint, "--rdzv-id", rdzv_id]
    command += ["--nproc-per-node", str(t.nproc_per_node), "--max-restarts", "0", "-m", "training.engine"]
    out_dir = Path(out_dir)
    command += ["--dataset", str(dataset_dir), "--out", str(out_dir), "--config", str(out_dir / CONFIG_FILE)]
    command += ["--stop-file", str(out_dir / STOP_FILE)] + (["--samples"] if samples else [])
    return command


def prepare(config: RunConfig, out_dir: Path) -> None:
    """Write the config the ranks read, and remove an earlier launch's stop request."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    (out_dir / STOP_FILE).unlink(missing_ok=True)


def run_torchrun(
    command: list[str],
    out_dir: Path,
    *,
    report: Callable[[str, dict], None],
    should_stop: Callable[[], bool],
    poll_seconds: float = 1.0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run `command`, pass rank 0's events to `report`, and create the stop file once `should_stop()` says so
    (asked after each event and every `poll_seconds`). Returns the engine's `result` event; raises
    RuntimeError with the end of torchrun.log when torchrun fails. An exception from `report` or
    `should_stop` (the worker lost the run) ends torchrun before it propagates."""
    out_dir = Path(out_dir)
    stop_file = out_dir / STOP_FILE
    log_path = out_dir / LOG_FILE
    with open(log_path, "ab") as log_handle:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process, lines), name="torchrun-stdout", daemon=True)
    reader.start()
    result: dict[str, Any] | None = None
    try:
        while True:
            try:
                line = lines.get(timeout=poll_seconds)
            except queue.Empty:
                line = ""
            if line is None:
                break
            event = _parse(line)
            if event is not None:
                kind = event.pop("event")
                if kind == "result":
                    result = event
                else:
                    report(kind, event)
            if not stop_file.exists() and should_stop():
                stop_file.touch()
        returncode = process.wait()
    finally:
        if process.poll() is None:
            _end(process)
    if returncode != 0 or result is None:
        raise RuntimeError(f"torchrun exited with status {returncode}:\n{_tail(log_path)}")
    return result


def _read_lines(process: subprocess.Popen, lines: queue.Queue) -> None:
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def _parse(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and "event" in event:
            return event
    return {"event": "log", "message": line[:2000]}


def _end(process: subprocess.Popen) -> None:
    """SIGTERM first (torchrun passes it on to its ranks), then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _die_with_parent() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""
