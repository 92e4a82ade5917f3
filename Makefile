# HRGC: `make run` starts the dashboard, `make test` runs every test. Both set up what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
CHROMIUM := /usr/bin/chromium
# Debian's Go toolchain: gofmt and go vet judge generated code in the evaluation tests (absent without it).
GO := /usr/bin/go
# llama.cpp through llama-cpp-python compiles from source (several minutes): build the wheel once
# into a cache outside the clone and install from there ever after.
LLAMA_CPP_VERSION := 0.3.36
# Where PyTorch comes from. Empty: pip's own indexes. On Linux x86_64, PyPI's torch==2.13.0 is the CUDA build
# (several GB of nvidia-* packages); a wheel found locally (pip's find-links) wins when there is one.
# CPU only: HRGC_TORCH_INDEX=https://download.pytorch.org/whl/cpu make run
TORCH_VERSION := 2.13.0
HRGC_TORCH_INDEX ?=
# x86-64: a portable AVX2 build, not -march=native. On CPUs with AMX (Sapphire Rapids and later) a native
# build takes llama.cpp's AMX path, which segfaults on Q8_0 models (ggml-org/llama.cpp#20824).
LLAMA_CMAKE_ARGS := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
# The folder names the build, so a wheel cached by an older recipe is never reused.
WHEELS := $(HOME)/.cache/hrgc/wheels-portable

.PHONY: run test e2e unit lint check-imports bench-fetch bench-dataset bench-train bench-corpus bench-quality clean-test

run: $(VENV)/.installed
	$(PY) manage.py serve

# The virtualenv is rebuilt only when requirements.txt changes, so a second `make run` starts in seconds.
# Makefile too: a change of install recipe (the llama.cpp build) reaches existing virtualenvs.
$(VENV)/.installed: requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(if $(HRGC_TORCH_INDEX),$(PIP) install -q torch==$(TORCH_VERSION) --index-url $(HRGC_TORCH_INDEX))
	$(PIP) install -q -r requirements.txt
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  (echo "Compiling llama.cpp (llama-cpp-python $(LLAMA_CPP_VERSION)) once; this takes several minutes" && \
	   CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	   $(PIP) wheel -q --no-deps --no-cache-dir llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEELS))
	$(PIP) uninstall -q -y llama-cpp-python 2>/dev/null || true
	$(PIP) install -q --find-links $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(GO):
	@echo "Installing Debian's golang-go for the evaluation tests (gofmt, go vet)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go

test: $(VENV)/.installed-test $(CHROMIUM) $(GO)
	$(VENV)/bin/pytest tests $(PYTEST_ARGS)

unit: $(VENV)/.installed-test $(GO)
	$(VENV)/bin/pytest tests -m "not e2e" $(PYTEST_ARGS)

e2e: $(VENV)/.installed-test $(CHROMIUM)
	$(VENV)/bin/pytest tests -m e2e $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The ML and data modules load without Django (the README's rule), each in a fresh interpreter.
check-imports: $(VENV)/.installed
	$(PY) .ci/check_domain_imports.py

bench-fetch: $(VENV)/.installed-test
	$(PY) bench/fetch.py

bench-dataset: $(VENV)/.installed-test
	$(PY) bench/dataset.py

bench-train: $(VENV)/.installed-test
	$(PY) bench/train.py

bench-corpus: $(VENV)/.installed-test
	$(PY) bench/corpus_pages.py

bench-quality: $(VENV)/.installed-test
	$(PY) bench/quality.py $(if $(REPO),--repo $(REPO))

clean-test:
	rm -rf var/test
