"""bench/gpu_check.py, the one prepared run of every GPU path, runs here on a CPU as a person runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_every_check_on_a_cpu(tmp_path):
    command = [sys.executable, "bench/gpu_check.py", "--device", "cpu", "--quick", "--out", str(tmp_path)]
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]

    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(report) == ["environment", "loss", "kv_cache", "train_bf16", "train_fp16", "ddp", "bench"]
    outcomes = {name: entry["outcome"] for name, entry in report.items()}
    assert outcomes == {**{name: "passed" for name in report}, "train_fp16": "skipped"}
    assert report["environment"]["type"] == "cpu"
    assert set(report["loss"]) >= {"fp32", "bf16"}
    assert report["train_bf16"]["resumed_at_step"] > 8  # the second part resumed from the first one's checkpoint
    assert "world size 2" in report["ddp"]["setup"]
    assert any(row.startswith("| gpt |") for row in report["bench"]["table"])
    assert "| ddp | passed |" in child.stdout


def test_a_failed_check_is_recorded_with_its_error_and_the_next_one_still_runs(tmp_path):
    script = (
        "import sys; sys.path.insert(0, 'bench'); import gpu_check\n"
        "def broken(ctx): raise RuntimeError('CUDA error: an illegal memory access')\n"
        "gpu_check.CHECKS['loss'] = broken\n"
        f"sys.argv = ['gpu_check.py', '--device', 'cpu', '--quick', '--only', 'loss,kv_cache', '--out', {str(tmp_path)!r}]\n"
        "sys.exit(gpu_check.main())\n"
    )
    child = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 1, child.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["loss"]["outcome"] == "failed"
    assert report["loss"]["error"] == "RuntimeError: CUDA error: an illegal memory access"
    assert report["kv_cache"]["outcome"] == "passed"


def test_an_unknown_check_is_refused_by_name(tmp_path):
    child = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--device", "cpu", "--only", "loss,nonsense", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 2
    assert "unknown checks ['nonsense']" in child.stderr
