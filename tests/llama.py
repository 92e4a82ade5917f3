"""llama.cpp is part of the product (playground, export verification): its tests fail without it, never skip."""

from __future__ import annotations

import pytest

MISSING = (
    "llama-cpp-python is missing: `make test` (and `make run`) compile it once into ~/.cache/hrgc/wheels-portable and "
    "install it from there (see requirements-test.txt); without it the playground and GGUF verification are untested"
)


def require_llama_cpp():
    """The llama_cpp module, or a failed test (as the Chromium fixture fails without Chromium)."""
    try:
        import llama_cpp
    except ImportError as exc:
        pytest.fail(f"{MISSING} ({exc})", pytrace=False)
    return llama_cpp


@pytest.fixture
def llama_cpp_module():
    return require_llama_cpp()


needs_llama_cpp = pytest.mark.usefixtures("llama_cpp_module")
