"""The CI's "domain modules import no Django" check passes on the tree and fails when a module imports Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "check_domain_imports.py"


def run_check(*modules: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, str(CHECK), *modules], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_every_domain_module_loads_without_django():
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr
    for module in ("training.engine", "training.hrm.model", "corpus.golang", "corpus.serialize"):
        assert f"{module}: no Django" in result.stdout
    assert "corpus.github.client: no Django" in result.stdout
    assert "models_registry.export.gguf_export: no Django" in result.stdout


def test_the_check_fails_when_a_module_imports_django(tmp_path):
    (tmp_path / "leaky_domain.py").write_text("import django.db  # a domain module that reached for the ORM\n")
    (tmp_path / "clean_domain.py").write_text("import json\n")
    result = run_check("clean_domain", "leaky_domain", pythonpath=tmp_path)
    assert result.returncode == 1
    assert "clean_domain: no Django" in result.stdout
    assert "leaky_domain: imports Django (django" in result.stdout


def test_the_check_fails_when_a_module_does_not_load(tmp_path):
    result = run_check("no_such_domain_module", pythonpath=tmp_path)
    assert result.returncode == 1
    assert "no_such_domain_module: does not load: ModuleNotFoundError" in result.stdout


def test_ci_runs_the_linter_and_the_import_check_before_the_tests():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "set -euo pipefail" in lines  # a failing step fails the run
    assert lines.index("make lint") < lines.index("make check-imports") < lines.index("make test")
