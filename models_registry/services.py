"""Writes and reads of the registry: queue an export, run it, describe it, serve the playground."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from django.db import transaction

from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import Progress, enqueue_on_commit
from hrgc_site.models import ACTIVE_STATUSES, JobStatus
from models_registry.models import ExportedModel
from training.models import TrainingRun


def create_export(*, run: TrainingRun, step: int | None, format: str, quant: str, user=None) -> ExportedModel:
    """A queued export row for one checkpoint (the latest when `step` is None), after checking the choice."""
    checkpoints = run.checkpoints.order_by("-step")
    checkpoint = checkpoints.filter(step=step).first() if step is not None else checkpoints.first()
    if checkpoint is None:
        raise ActionRefused("This run has no checkpoint to export" + (f" at step {step}." if step else " yet."))
    if format == ExportedModel.Format.SAFETENSORS:
        quant = ExportedModel.Quant.F32  # the transformers folder keeps full precision; quantizing is GGUF's job
    same = (
        run.exports.filter(checkpoint=checkpoint, format=format, quant=quant)
        .filter(status__in=(*ACTIVE_STATUSES, JobStatus.FINISHED))
        .first()
    )
    if same is not None and (same.is_active or (same.path and Path(same.path).exists())):
        # The same file again would be a second, byte-identical model on the Models page.
        state = "is being exported" if same.is_active else "is already exported"
        raise ActionRefused(f"Step {checkpoint.step} {state} as {same.format} {same.quant}: model #{same.pk}.")
    return ExportedModel.objects.create(
        run=run,
        checkpoint=checkpoint,
        step=checkpoint.step,
        format=format,
        quant=quant,
        created_by=user,
        message="queued",
    )


@transaction.atomic
def request_export(*, run: TrainingRun, step: int | None, format: str, quant: str, user=None) -> ExportedModel:
    export = create_export(run=run, step=step, format=format, quant=quant, user=user)
    enqueue_on_commit(export, "models_registry.tasks.export_task")
    return export


def run_export(export: ExportedModel) -> tuple[str, str]:
    """The worker's half: write the files, verify them against PyTorch, register them."""
    from models_registry.export.gguf_export import export_gguf
    from models_registry.export.modelfile import write_modelfile
    from models_registry.export.safetensors_export import export_safetensors

    run = export.run
    tokenizer = run.dataset.tokenizer
    out_dir = export.directory
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(export)

    def report(message: str, fraction: float | None = None) -> None:
        fields = {"message": message}
        if fraction is not None:
            fields["progress"] = fraction
        progress.update(force=True, **fields)

    if export.format == ExportedModel.Format.GGUF:
        info = export_gguf(
            Path(export.checkpoint.path),
            Path(tokenizer.model_path),
            out_dir / "model.gguf",
            quant=export.quant,
            report=report,
        )
        write_modelfile(out_dir / "model.gguf", out_dir / "Modelfile")
        names = ["model.gguf", "Modelfile"]
    else:
        info = export_safetensors(Path(export.checkpoint.path), Path(tokenizer.model_path), out_dir, report=report)
        # The weights first: the export's headline size and sha256 are those of its main file.
        names = sorted((p.name for p in out_dir.iterdir() if p.is_file()), key=lambda n: (n != "model.safetensors", n))
    for name in names:
        (out_dir / name).chmod(0o644)  # temp files are created 0600; a shared data dir needs them readable
    files = [_file_entry(out_dir / name) for name in names]
    verification = dict(info.verification or {}, fallbacks=info.fallbacks)
    ExportedModel.objects.filter(pk=export.pk).update(
        path=str(out_dir),
        files=files,
        size=sum(f["size"] for f in files),
        sha256=files[0]["sha256"],
        architecture=info.architecture,
        parameter_count=info.parameter_count,
        verification=verification,
        verified=verification.get("ok"),
        progress=1.0,
    )
    return JobStatus.FINISHED, verification_summary(verification)


def verification_summary(verification: dict) -> str:
    """One line for the job message: did the reloaded file agree with PyTorch, and how closely."""
    if verification.get("ok") is None:
        return f"written; not verified ({verification.get('skipped', 'no verifier')})"
    verdict = "verified" if verification["ok"] else "written, but verification FAILED"
    logits = verification.get("logits", {})
    parts = []
    if "max_abs_diff" in logits:
        parts.append(f"max |Δlogit| {logits['max_abs_diff']:.2e}")
    if "top1_agreement" in logits:
        parts.append(f"top-1 agreement {logits['top1_agreement']:.1%}")
    tokenization = verification.get("tokenization")
    if tokenization:
        parts.append("tokenization matches SentencePiece" if tokenization.get("ok") else "tokenization differs")
    return f"{verdict}: " + ", ".join(parts) if parts else verdict


def _file_entry(path: Path) -> dict:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def delete_export(export: ExportedModel) -> None:
    if export.is_active and not export.looks_dead:
        raise ActionRefused("This export is still running.")
    if export.path:
        shutil.rmtree(export.path, ignore_errors=True)
    export.delete()


def download_name(export: ExportedModel, name: str) -> str:
    """The name a registered file downloads as: a GGUF after its model (hrgc-RUN-stepN-QUANT.gguf), so two
    downloads do not both land as model.gguf; the Modelfile and a safetensors folder's files keep their names
    (Ollama's -f and from_pretrained() look for them)."""
    if name.endswith(".gguf"):
        return f"hrgc-{export.run.name}-step{export.step}-{export.quant}.gguf"
    return name


def modelfile_for_download(export: ExportedModel, text: str) -> str:
    """The Modelfile as downloaded: FROM names the GGUF by its download name, so the two files work side by side."""
    gguf = next((entry["name"] for entry in export.files if entry["name"].endswith(".gguf")), None)
    if gguf is None:
        return text
    return "\n".join(
        f"FROM ./{download_name(export, gguf)}" if line.startswith("FROM ") else line for line in text.split("\n")
    )


def llama_cpp_versions() -> dict[str, str]:
    """The llama.cpp this dashboard runs models with, as the installed package reports it (empty when absent)."""
    try:
        import llama_cpp
        from llama_cpp import llama_cpp as bindings
    except Exception:  # noqa: BLE001 - not installed, or its shared library does not load here
        return {}
    versions = {"llama_cpp_python": llama_cpp.__version__}
    try:
        versions["libllama"] = bindings.llama_version().decode()
    except Exception:  # noqa: BLE001 - older bindings have no llama_version()
        pass
    return versions


# The upstream llama.cpp change that taught it the hrm_text architecture (HrmTextForCausalLM).
HRM_TEXT_UPSTREAM = "https://github.com/ggml-org/llama.cpp/pull/27625"


def runtime_support(export: ExportedModel) -> dict:
    """Which runtimes read this architecture, and which of those claims were checked on this machine."""
    versions = llama_cpp_versions()
    local = (
        f"llama-cpp-python {versions['llama_cpp_python']}"
        + (f" (its vendored llama.cpp reports libllama {versions['libllama']})" if "libllama" in versions else "")
        if versions
        else "llama-cpp-python 0.3.36 (this dashboard's requirement; not importable in this web process)"
    )
    if export.verified:
        verified = f"{local}: this file was loaded with it on this machine and its logits compared with PyTorch."
    else:
        verified = f"{local} is the llama.cpp this dashboard runs it with; this export's verification has not passed."
    if export.run.family == "hrm":
        return {
            "architecture": "hrm_text",
            "verified": verified,
            "llama_cpp": "A llama.cpp that includes the hrm_text architecture "
            f"({HRM_TEXT_UPSTREAM}); older builds answer “unknown model architecture: 'hrm_text'”.",
            "ollama": "Not verified here: Ollama reads this file only once its bundled llama.cpp includes hrm_text. "
            "If `ollama create` reports an unknown architecture, use llama.cpp or llama-cpp-python.",
        }
    return {
        "architecture": "llama",
        "verified": verified,
        "llama_cpp": "Any llama.cpp release: the llama architecture is its oldest.",
        "ollama": "Any Ollama release that imports GGUF files (`ollama create -f Modelfile`); not run on this machine.",
    }


def how_to_run(export: ExportedModel) -> dict:
    name = f"hrgc-{export.run.name}".lower()
    if export.format == ExportedModel.Format.GGUF:
        gguf = download_name(export, "model.gguf")
        return {
            "ollama": f"# download {gguf} and Modelfile into one folder, then:\nollama create {name} -f Modelfile\n"
            f'ollama run {name} "Fix nil pointer in handler"',
            "llama_cpp": f"llama-cli -m {gguf} -p '<REPO> owner/project\\n<PR_TITLE> Fix nil pointer in handler\\n"
            "<PR_BODY> \\n\\n<PLAN>\\n' -n 256 --temp 0.7",
            "python": f'from llama_cpp import Llama\nllm = Llama(model_path="{gguf}")\n'
            'print(llm("<REPO> owner/project\\n<PR_TITLE> Fix nil pointer\\n<PR_BODY> \\n\\n<PLAN>\\n", '
            'max_tokens=256)["choices"][0]["text"])',
        }
    architecture = "HrmTextForCausalLM" if export.run.family == "hrm" else "LlamaForCausalLM"
    return {
        "files": f"Download every file below into one folder, e.g. {name}/ (they keep their names).",
        "python": f'from transformers import {architecture}\nmodel = {architecture}.from_pretrained("{name}/")',
    }


# Below these a model mostly emits plausible-looking noise: the playground says so before anyone judges the output.
BARELY_TRAINED_STEPS = 1_000
BARELY_TRAINED_VAL_LOSS = 3.0  # nats per token: perplexity above ~20


def barely_trained_hint(export: ExportedModel) -> str:
    """A sentence when the exported checkpoint had few steps or a high validation loss; '' for a trained model."""
    run = export.run
    loss = export.checkpoint.val_loss if export.checkpoint and export.checkpoint.val_loss is not None else None
    loss = loss if loss is not None else run.best_val_loss
    reasons = []
    if export.step < BARELY_TRAINED_STEPS:
        reasons.append(f"{export.step:,} training steps")
    if loss is not None and loss > BARELY_TRAINED_VAL_LOSS:
        reasons.append(f"validation loss {loss:.2f}")
    if not reasons:
        return ""
    return (
        f"Barely trained: this checkpoint has {' and '.join(reasons)}. Expect repetitive or broken code; "
        f"models start to write Go that parses after a few thousand steps and a validation loss under "
        f"{BARELY_TRAINED_VAL_LOSS:g}."
    )


def final_metrics(run: TrainingRun) -> dict:
    return {
        "step": run.step,
        "tokens": run.tokens,
        "loss": run.last_loss,
        "val_loss": run.last_val_loss,
        "best_val_loss": run.best_val_loss,
        "parameters": run.parameter_count,
    }


# The playground runs llama.cpp inside the web process, for viewers too: bounded so that nobody can take
# the machine. At most PLAYGROUND_CONCURRENCY generations per web process at once (others get 429), each
# on PLAYGROUND_THREADS threads (half the CPUs unless set) and for at most PLAYGROUND_SECONDS; the form
# bounds iterations, tokens per attempt and prompt size.
def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


PLAYGROUND_THREADS = max(1, int(_env_number("HRGC_PLAYGROUND_THREADS", max(1, (os.cpu_count() or 2) // 2))))
PLAYGROUND_CONCURRENCY = max(1, int(_env_number("HRGC_PLAYGROUND_CONCURRENCY", 1)))
PLAYGROUND_SECONDS = max(1.0, _env_number("HRGC_PLAYGROUND_SECONDS", 120))
_slots = threading.BoundedSemaphore(PLAYGROUND_CONCURRENCY)


class PlaygroundBusy(Exception):
    pass


class Generation:
    """One playground generation holding a slot: iterate it for the events; the slot is given back when
    the events end, the time limit stops them, or the response is closed (the browser went away)."""

    def __init__(self, events: Iterator[dict], seconds: float = PLAYGROUND_SECONDS, *, slot=None):
        self._events, self._seconds, self._slot = events, seconds, slot
        self._released = False

    def __iter__(self) -> Iterator[dict]:
        deadline = time.monotonic() + self._seconds
        try:
            for event in self._events:
                yield event
                if time.monotonic() > deadline and event.get("type") != "done":
                    yield {
                        "type": "error",
                        "message": f"stopped at the playground's limit of {self._seconds:.0f} s per generation",
                    }
                    return
        finally:
            self.close()

    def close(self) -> None:
        if self._released:
            return
        self._released = True
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
        if self._slot is not None:
            self._slot.release()


def start_playground(**options) -> Generation:
    """A generation for the playground form's cleaned data, or PlaygroundBusy when every slot is taken."""
    if not _slots.acquire(blocking=False):
        raise PlaygroundBusy(
            "The playground is busy with another generation; try again when it ends "
            f"(at most {PLAYGROUND_CONCURRENCY} at once, HRGC_PLAYGROUND_CONCURRENCY)."
        )
    return Generation(playground_events(**options), PLAYGROUND_SECONDS, slot=_slots)


# Loading a GGUF takes a moment; a web process keeps the two it used last.
_loaded: OrderedDict[str, object] = OrderedDict()
_loaded_lock = threading.Lock()


def _gguf_model(path: str):
    from models_registry.runtime import GGUFModel

    with _loaded_lock:
        if path in _loaded:
            _loaded.move_to_end(path)
            return _loaded[path]
        model = GGUFModel(Path(path), n_threads=PLAYGROUND_THREADS)
        _loaded[path] = model
        while len(_loaded) > 2:
            _loaded.popitem(last=False)
        return model


def playground_events(
    *,
    model: ExportedModel,
    title: str,
    body: str,
    code_before: str,
    path: str,
    max_iterations: int,
    max_code_tokens: int,
    temperature: float,
    seed: int | None,
) -> Iterator[dict]:
    from corpus import golang
    from models_registry.runtime import GGUFTokenSource
    from training.hrm.generate import generate_with_refinement

    gguf = model.registered_file("model.gguf")
    if gguf is None:
        raise ActionRefused("This export has no GGUF file.")
    source = GGUFTokenSource(_gguf_model(str(gguf)), temperature=temperature, seed=seed)
    yield {"type": "start", "model": str(model), "architecture": model.architecture}
    yield from generate_with_refinement(
        source,
        title=title,
        body=body,
        code_before=code_before,
        repo=f"playground/{model.run.name}",
        path=path or "main.go",
        max_iterations=max_iterations,
        max_code_tokens=max_code_tokens,
        validate=golang.attempt_errors,  # the one notion of "parses": an empty attempt does not
    )
