"""The train loop on CPU: loss falls, a stopped run resumes exactly, checkpoints are whole, and its helpers."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from corpus.records import SECTION_LABELS
from training import devices
from training.data import TokenBatches
from training.devices import (
    autocast_dtype,
    device_info,
    needs_grad_scaler,
    peak_memory_bytes,
    pick_device,
)
from training.engine import (
    find_latest_checkpoint,
    learning_rate_at,
    load_checkpoint,
    section_weights_at,
    train,
)
from training.hrm.config import TrainConfig, preset

from .support import VOCAB, write_go_corpus


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_go_corpus(tmp_path_factory.mktemp("dataset"))


def small_config(**overrides):
    """The tiny preset with shorter windows so each test runs in seconds on two cores."""
    settings = {
        "block_size": "64",
        "max_steps": "30",
        "warmup_steps": "5",
        "eval_steps": "10",
        "save_steps": "10",
        "logging_steps": "1",
        "eval_iters": "2",
        "num_threads": "1",
    }
    settings.update({key: str(value) for key, value in overrides.items()})
    return preset("hrm", "tiny", vocab_size=VOCAB).with_overrides(settings)


class Recorder:
    """A `report` callback that keeps every event."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def __call__(self, kind: str, payload: dict) -> None:
        self.events.append((kind, payload))

    def of(self, kind: str) -> list[dict]:
        return [payload for event, payload in self.events if event == kind]


def test_loss_falls_on_a_small_go_corpus(dataset, tmp_path):
    # The tiny preset as it is, but for 128-token windows: half the work, the same learning curve.
    config = preset("hrm", "tiny", vocab_size=VOCAB).with_overrides(
        {
            "block_size": "128",
            "max_steps": "120",
            "eval_steps": "40",
            "save_steps": "60",
            "logging_steps": "10",
            "num_threads": "1",
        }
    )
    recorder = Recorder()
    result = train(config, dataset, tmp_path, report=recorder)

    evals = recorder.of("eval")
    assert [e["step"] for e in evals] == [40, 80, 120]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert evals[-1]["val_loss"] < 0.5 * math.log(VOCAB)  # far below guessing among 260 ids
    assert evals[-1]["perplexity"] == pytest.approx(math.exp(evals[-1]["val_loss"]))
    assert {"val_loss_plan", "val_loss_code", "val_loss_refine"} <= set(evals[-1])

    metrics = recorder.of("metrics")
    assert [m["step"] for m in metrics] == list(range(10, 121, 10))
    assert metrics[-1]["tokens"] == 120 * 8 * 128
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    assert all(m["grad_norm"] > 0 and m["tokens_per_sec"] > 0 and m["memory"] > 0 for m in metrics)
    assert "loss_code" in metrics[-1]
    assert metrics[-1]["lr"] == pytest.approx(learning_rate_at(119, config.train))

    assert result.status == "finished" and result.step == 120
    assert result.final_val_loss == evals[-1]["val_loss"]
    assert result.checkpoint_path == find_latest_checkpoint(tmp_path) == tmp_path / "checkpoints/step_0000120.pt"
    # Every 60 steps, plus each evaluation that beat the ones before it (superseded ones are removed again).
    on_grid = [c["step"] for c in recorder.of("checkpoint") if c["step"] % 60 == 0]
    assert on_grid == [60, 120]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir())[-1] == "step_0000120.pt"
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    messages = " ".join(m["message"] for m in recorder.of("log"))
    assert "parameters" in messages and "tokens per step 1,024" in messages


def test_stopped_run_resumes_to_the_same_losses(dataset, tmp_path):
    # Dropout and gradient accumulation on: the RNG and data streams must both be restored.
    config = small_config(dropout="0.1", gradient_accumulation_steps="2", max_steps="24", save_steps="100")
    whole = Recorder()
    uninterrupted = train(config, dataset, tmp_path / "whole", report=whole)

    first = Recorder()
    stopped = train(
        config, dataset, tmp_path / "split", report=first, should_stop=lambda: len(first.of("metrics")) >= 13
    )
    assert stopped.status == "stopped" and stopped.step == 13
    assert stopped.checkpoint_path == tmp_path / "split/checkpoints/step_0000013.pt"

    second = Recorder()
    resumed = train(config, dataset, tmp_path / "split", report=second)
    assert second.of("metrics")[0]["step"] == 14
    whole_losses = {m["step"]: m["loss"] for m in whole.of("metrics")}
    for m in second.of("metrics"):
        assert m["loss"] == pytest.approx(whole_losses[m["step"]], abs=1e-6)
    assert resumed.step == uninterrupted.step == 24
    assert resumed.tokens == uninterrupted.tokens
    assert resumed.final_val_loss == pytest.approx(uninterrupted.final_val_loss, abs=1e-6)


@pytest.mark.slow
def test_a_compiled_run_trains_and_resumes_exactly(dataset, tmp_path):
    """torch.compile on the CPU (CI has no GPU): the compiled model trains, and a stopped run resumes to the
    losses of an uninterrupted one."""
    config = small_config(compile="on", max_steps="6", save_steps="100", eval_steps="100")
    whole = Recorder()
    train(config, dataset, tmp_path / "whole", report=whole)
    first = Recorder()
    stopped = train(
        config, dataset, tmp_path / "split", report=first, should_stop=lambda: len(first.of("metrics")) >= 3
    )
    assert stopped.status == "stopped" and stopped.step == 3
    second = Recorder()
    resumed = train(config, dataset, tmp_path / "split", report=second)

    assert resumed.step == 6 and [m["step"] for m in second.of("metrics")] == [4, 5, 6]
    whole_losses = {m["step"]: m["loss"] for m in whole.of("metrics")}
    for m in first.of("metrics") + second.of("metrics"):
        assert m["loss"] == pytest.approx(whole_losses[m["step"]], abs=1e-6)
    assert whole_losses[6] < whole_losses[1]


def test_stop_leaves_only_whole_checkpoints(dataset, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    stale = checkpoints / ".step_0000099.pt.tmp"  # what a killed writer leaves behind
    stale.write_bytes(b"half a checkpoint")
    recorder = Recorder()
    result = train(small_config(), dataset, tmp_path, report=recorder, should_stop=lambda: True)

    assert result.status == "stopped" and result.step == 1
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_0000001.pt"]
    state = load_checkpoint(result.checkpoint_path)
    assert state["step"] == 1 and state["config"]["model"]["family"] == "hrm"
    assert recorder.of("checkpoint") == [
        {"step": 1, "path": str(result.checkpoint_path), "size": result.checkpoint_path.stat().st_size, "best": False}
    ]


def test_resume_false_starts_over(dataset, tmp_path):
    train(small_config(max_steps="3"), dataset, tmp_path, report=Recorder())
    recorder = Recorder()
    result = train(small_config(max_steps="3"), dataset, tmp_path, report=recorder, resume=False)
    assert recorder.of("metrics")[0]["step"] == 1 and result.step == 3


@pytest.mark.parametrize(
    "amx,min_parameters,expected",
    [(False, 0, "float32"), (True, 0, "bfloat16 autocast"), (True, 10_000_000, "float32")],
    ids=["cpu", "amx-cpu", "amx-cpu-small-model"],
)
def test_fp16_flag_on_a_cpu_is_bf16_where_it_has_amx_for_a_large_model(
    dataset, tmp_path, monkeypatch, amx, min_parameters, expected
):
    monkeypatch.setattr(devices, "cpu_has_amx_bf16", lambda: amx)
    monkeypatch.setattr(devices, "CPU_BF16_MIN_PARAMETERS", min_parameters)  # the test's model is tiny
    recorder = Recorder()
    result = train(small_config(fp16="true", max_steps="4"), dataset, tmp_path, report=recorder)
    assert result.status == "finished"
    assert all(math.isfinite(m["loss"]) for m in recorder.of("metrics"))
    assert f"precision: {expected}" in [entry["message"] for entry in recorder.of("log")]
    assert devices.cpu_bf16_wanted(10_000_000) == amx
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, True) is None and not needs_grad_scaler(cpu, True)
    assert autocast_dtype(cpu, True, cpu_bf16=True) == torch.bfloat16
    assert autocast_dtype(cpu, False, cpu_bf16=True) is None


def test_sample_hook_runs_without_changing_training(dataset, tmp_path):
    def sample_fn(model, step):
        torch.rand(1000)  # a sampler draws random numbers; training must not notice
        return {"parsed": 1, "training": model.training}

    plain, sampled = Recorder(), Recorder()
    config = small_config(dropout="0.1", max_steps="6", validation_frequency="2")
    train(config, dataset, tmp_path / "plain", report=plain)
    train(config, dataset, tmp_path / "sampled", report=sampled, sample_fn=sample_fn)
    assert sampled.of("samples") == [{"step": s, "parsed": 1, "training": False} for s in (2, 4, 6)]
    assert [m["loss"] for m in sampled.of("metrics")] == [m["loss"] for m in plain.of("metrics")]


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    t = TrainConfig(learning_rate=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert learning_rate_at(0, t) == pytest.approx(1e-4)
    assert learning_rate_at(9, t) == pytest.approx(1e-3)
    assert learning_rate_at(10, t) == pytest.approx(1e-3)
    assert learning_rate_at(60, t) == pytest.approx(0.55e-3)  # halfway down the cosine
    assert learning_rate_at(110, t) == pytest.approx(1e-4)
    assert learning_rate_at(500, t) == pytest.approx(1e-4)
    decay = [learning_rate_at(s, t) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(decay))


def test_refinement_weight_starts_after_its_warmup():
    t = preset("hrm", "tiny").train
    assert section_weights_at(t.refinement_warmup - 1, t)["refine"] == 0.0
    assert section_weights_at(t.refinement_warmup, t)["refine"] == t.refinement_loss_weight
    assert section_weights_at(0, t)["code"] == t.code_loss_weight
    assert set(section_weights_at(0, t)) == set(SECTION_LABELS)


def test_batches_are_shifted_labelled_and_replayable(dataset):
    batches = TokenBatches(dataset, "train", 32, 4, torch.device("cpu"), seed=3)
    state = batches.state_dict()
    x, y, sections = batches.next_batch()
    assert x.shape == y.shape == sections.shape == (4, 32) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    tokens = np.fromfile(dataset / "train.bin", dtype=np.uint16)
    labels = np.fromfile(dataset / "train.labels.bin", dtype=np.uint8)
    start = int(
        np.flatnonzero(np.lib.stride_tricks.sliding_window_view(tokens, 32).__eq__(x[0].numpy()).all(axis=1))[0]
    )
    assert np.array_equal(sections[0].numpy(), labels[start + 1 : start + 33])

    batches.load_state_dict(state)
    assert torch.equal(batches.next_batch()[0], x)
    other_rank = TokenBatches(dataset, "train", 32, 4, torch.device("cpu"), seed=3, rank=1)
    assert not torch.equal(other_rank.next_batch()[0], x)


def test_device_helpers_describe_the_cpu():
    cpu = torch.device("cpu")
    info = device_info(cpu)
    assert info["type"] == "cpu" and info["torch_version"] == torch.__version__ and info["threads"] >= 1
    assert peak_memory_bytes(cpu) > 10 * 2**20  # this process has at least imported torch
    assert pick_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(ValueError):
            pick_device("cuda")


def test_the_best_checkpoint_by_validation_loss_is_saved_and_kept(dataset, tmp_path):
    # Evaluations every 3 steps, saves only every 100: without the best-checkpoint rule only step 12 would exist.
    config = small_config(max_steps="12", eval_steps="3", save_steps="100", learning_rate="0.02")
    recorder = Recorder()
    train(config, dataset, tmp_path, report=recorder)

    evals = [(e["step"], e["val_loss"]) for e in recorder.of("eval")]
    assert [step for step, _ in evals] == [3, 6, 9, 12]
    best_step, best_loss = min(evals, key=lambda item: item[1])
    new_bests = [
        step for index, (step, loss) in enumerate(evals) if all(loss < earlier for _, earlier in evals[:index])
    ]
    saved = recorder.of("checkpoint")
    assert [c["step"] for c in saved if c["best"]] == new_bests
    assert {c["step"] for c in saved} == {*new_bests, 12}

    files = sorted(int(p.stem.removeprefix("step_")) for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert files == sorted({best_step, 12})
    state = load_checkpoint(tmp_path / f"checkpoints/step_{best_step:07d}.pt")
    assert state["val_loss"] == pytest.approx(best_loss)
    assert state["best_step"] == best_step
    removed = [c["step"] for c in recorder.of("checkpoint_removed")]
    assert sorted(removed + files) == sorted({c["step"] for c in saved})
    # Each checkpoint is announced before its file is written (the recorder writes the points out then).
    announced = [(kind, payload["step"]) for kind, payload in recorder.events if kind in ("saving", "checkpoint")]
    assert announced == [(kind, c["step"]) for c in saved for kind in ("saving", "checkpoint")]


def test_keep_last_checkpoints_prunes_the_grid_but_keeps_the_best(dataset, tmp_path):
    config = small_config(max_steps="12", eval_steps="6", save_steps="2", keep_last_checkpoints="2")
    recorder = Recorder()
    train(config, dataset, tmp_path, report=recorder)

    best_step = min(recorder.of("eval"), key=lambda e: e["val_loss"])["step"]
    files = sorted(int(p.stem.removeprefix("step_")) for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert files == sorted({best_step, 10, 12})
    assert [c["step"] for c in recorder.of("checkpoint")] == [2, 4, 6, 8, 10, 12]
    assert sorted(c["step"] for c in recorder.of("checkpoint_removed")) == [s for s in (2, 4, 6, 8) if s != best_step]


def test_a_resumed_run_remembers_its_best_validation_loss(dataset, tmp_path):
    config = small_config(max_steps="9", eval_steps="3", save_steps="100")
    first = Recorder()
    train(config, dataset, tmp_path, report=first, should_stop=lambda: len(first.of("eval")) >= 2)
    best_before = min(e["val_loss"] for e in first.of("eval"))

    second = Recorder()
    train(config, dataset, tmp_path, report=second)
    # Only an evaluation below the first part's best counts as a new best after the resume.
    for checkpoint in second.of("checkpoint"):
        if checkpoint["best"]:
            assert [e["val_loss"] for e in second.of("eval") if e["step"] == checkpoint["step"]][0] < best_before


def test_cuda_when_present_is_picked_described_and_trains():
    """On a machine with CUDA (or ROCm), the GPU path is checked, never skipped; without it, the fallback is."""
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA was asked for"):
            pick_device("cuda")
        return
    from dataclasses import replace

    from training.devices import autocast_context, reset_peak_memory
    from training.hrm.config import preset
    from training.hrm.model import build_model

    device = pick_device("auto")
    assert device.type == "cuda" and pick_device("cuda").type == "cuda"
    info = device_info(device)
    assert info["name"] and info["memory_total"] > 0 and (info["cuda_version"] or info["hip_version"])
    reset_peak_memory(device)
    torch.manual_seed(0)
    model = build_model(replace(preset("hrm", "tiny", vocab_size=64).model, block_size=32)).to(device)
    x = torch.randint(0, 64, (4, 32), device=device)
    with autocast_context(device, fp16=True):
        _, loss, _ = model(x, torch.roll(x, -1, dims=1))
    loss.backward()
    assert torch.isfinite(loss).item()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in model.parameters() if p.requires_grad)
    assert peak_memory_bytes(device) > 0


def test_compile_setting_auto_compiles_on_cuda_only_and_old_bools_still_read():
    from training.engine import compile_wanted
    from training.hrm.config import RunConfig

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compile_wanted("auto", cuda) and not compile_wanted("auto", cpu)
    assert compile_wanted("on", cpu) and not compile_wanted("off", cuda)
    # On a CPU only a long run of a seed-sized model pays for the compile; a tiny-preset run does not.
    seed, tiny = preset("gpt", "seed"), preset("gpt", "tiny")
    assert compile_wanted("auto", cpu, parameters=29_500_000, max_steps=seed.train.max_steps)
    assert not compile_wanted("auto", cpu, parameters=29_500_000, max_steps=tiny.train.max_steps)
    assert not compile_wanted("auto", cpu, parameters=200_000, max_steps=seed.train.max_steps)
    assert not compile_wanted("auto", torch.device("mps"), parameters=29_500_000, max_steps=seed.train.max_steps)
    assert RunConfig.from_dict({"train": {"compile": True}}).train.compile == "on"
    assert RunConfig.from_dict({"train": {"compile": False}}).train.compile == "off"
    assert RunConfig().train.compile == "auto"
    with pytest.raises(ValueError, match="compile must be auto, on or off"):
        small_config(compile="sometimes")


def test_engine_reports_the_runs_own_peak_as_the_max_of_its_samples(dataset, tmp_path):
    recorder = Recorder()
    train(small_config(max_steps=4, eval_steps=4, save_steps=4), dataset, tmp_path, report=recorder)
    metrics = recorder.of("metrics")
    samples = [m["memory_now"] for m in metrics]
    assert all(sample > 0 for sample in samples)
    assert [m["memory"] for m in metrics] == [max(samples[: i + 1]) for i in range(len(samples))]


def test_a_checkpoint_without_loss_scaling_resumes_where_fp16_scales_the_loss(dataset, tmp_path):
    """A run saved in fp32 or bf16 has a disabled GradScaler ({} in the checkpoint); resumed on a GPU that trains
    fp16 its scaler is enabled, and loading {} into it raised instead of starting the scale afresh."""
    from training.engine import Distributed, _resume_from, init_train_state, load_checkpoint

    config = small_config(max_steps="3", save_steps="3")
    finished = train(config, dataset, tmp_path / "fp32", report=Recorder())
    saved = load_checkpoint(finished.checkpoint_path)
    assert saved["scaler"] == {}

    state = init_train_state(config, dataset, Distributed(), torch.device("cpu"))
    fp16_scaler = torch.amp.GradScaler("cpu", enabled=True)
    _resume_from(saved, state.model, state.optimizer, fp16_scaler, state.train_batches, Distributed(), 0, Recorder())
    assert fp16_scaler.get_scale() == 65536.0  # the default initial scale
