#!/usr/bin/env python3
"""The README's rule, checked: the ML and data modules load without importing Django.

Each module is imported in a fresh interpreter (one subprocess per module, so one module's imports
cannot hide another's); any `django` or `django.*` in sys.modules afterwards fails the check.
Usage: check_domain_imports.py [MODULE ...]   (no arguments: every domain module below)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Modules, and packages whose every module is checked (a new module in them is covered without editing this).
MODULES = (
    "corpus.golang",
    "corpus.plans",
    "corpus.serialize",
    "training.tokenizer",
    "training.dataset",
    "training.engine",
    "training.checkpoint_policy",
    "training.curves",
    "evaluation.ratings",
    "evaluation.families",
    "training.sampling",
    "corpus.code_section",
    "evaluation.metrics",
    "evaluation.gotools",
    "evaluation.splice",
    "evaluation.scorers",
    "evaluation.suites",
    "evaluation.scoring",
    "evaluation.presentation",
)
PACKAGES = ("corpus.github", "training.hrm", "models_registry.export")
PROBE = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "found = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
    "print(', '.join(found[:5])); sys.exit(1 if found else 0)"
)


def domain_modules() -> list[str]:
    names = list(MODULES)
    for package in PACKAGES:
        names.append(package)
        path = ROOT.joinpath(*package.split("."))
        names += [f"{package}.{info.name}" for info in pkgutil.iter_modules([str(path)])]
    return names


def django_imports(module: str) -> str:
    """'' when `module` loads without Django; otherwise what went wrong (the Django modules it loaded)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if result.returncode == 0:
        return ""
    if result.stdout.strip():
        return f"imports Django ({result.stdout.strip()})"
    return "does not load: " + (result.stderr.strip().splitlines() or ["(no output)"])[-1]


def main(argv: list[str]) -> int:
    failures = 0
    for module in argv or domain_modules():
        problem = django_imports(module)
        print(f"{module}: {problem or 'no Django'}")
        failures += bool(problem)
    if failures:
        print(
            f"{failures} domain module(s) import Django or do not load; keep Django in the apps' views, services and tasks"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
