"""Two CPU processes under torchrun (gloo) train one model: one voice, one checkpoint set, falling loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.training.support import write_go_corpus
from training.engine import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_torchrun_with_two_processes_trains_and_checkpoints_once(tmp_path):
    dataset = write_go_corpus(tmp_path / "dataset")
    out = tmp_path / "run"
    settings = [
        "block_size=64",
        "max_steps=40",
        "warmup_steps=5",
        "eval_steps=20",
        "save_steps=20",
        "logging_steps=10",
        "eval_iters=4",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training.engine",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--family",
        "hrm",
        "--preset",
        "tiny",
    ]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks on two cores: one thread each
    finished = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]

    events = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]

    def of(kind: str) -> list[dict]:
        return [e for e in events if e["event"] == kind]

    # Only rank 0 reports: each step's metrics appear once.
    assert [m["step"] for m in of("metrics")] == [10, 20, 30, 40]
    assert of("metrics")[-1]["tokens"] == 40 * 8 * 64 * 2
    evals = of("eval")
    assert [e["step"] for e in evals] == [20, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert of("metrics")[-1]["loss"] < of("metrics")[0]["loss"] - 0.5
    assert [r["status"] for r in of("result")] == ["finished"]

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step_0000020.pt", "step_0000040.pt"]
    state = load_checkpoint(out / "checkpoints" / "step_0000040.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    # Each rank read its own windows, and both streams are saved for an exact resume.
    rank_streams = [rng["data"]["generator"] for rng in state["rng"]]
    assert not torch.equal(rank_streams[0], rank_streams[1])
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
