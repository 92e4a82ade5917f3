"""Checks that must not pass by skipping: llama.cpp missing fails the suite; the live server's port cannot be
taken between being chosen and being served."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.commands import ROOT
from tests.conftest import LiveStack


@pytest.mark.slow
def test_llama_cpp_tests_fail_when_llama_cpp_python_is_missing(tmp_path):
    hidden = tmp_path / "hide" / "llama_cpp"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("llama_cpp hidden by the test")\n')
    env = {**os.environ, "PYTHONPATH": str(hidden.parent)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/models_registry/test_runtime.py",
            "tests/models_registry/test_export_gguf.py::test_llama_cpp_reproduces_pytorch_logits_and_tokenization",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "llama-cpp-python is missing" in output
    assert " skipped" not in output.splitlines()[-1], output


def test_the_live_server_port_is_held_from_the_moment_it_is_chosen(tmp_path):
    stack = LiveStack("unused", tmp_path)
    try:
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", stack.port))
    finally:
        stack._listener.close()
