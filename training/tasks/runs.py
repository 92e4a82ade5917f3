"""The training task: runs the engine for one TrainingRun and records what it reports in the run's rows."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from django.db.models import Min

from hrgc_site.jobs import Progress, run_job
from hrgc_site.models import JobStatus
from training import engine, launch
from training.devices import device_info, pick_device
from training.hrm.config import RunConfig
from training.models import Checkpoint, MetricPoint, RunLogLine, TrainingRun
from training.ranks import clear_ranks
from training.sampling import make_sample_fn
from training.services.runs import mark_dead_runs

log = logging.getLogger(__name__)
KEEP_LOG_LINES = 500
FLUSH_SECONDS = 1.0  # metric points and run counters reach the database at most this often
Echo = Callable[[str], None]


class RunRecorder:
    """The engine's `report` and `should_stop` for one run: metric upserts, checkpoints, log lines, counters."""

    def __init__(
        self,
        run: TrainingRun,
        *,
        every: float = FLUSH_SECONDS,
        echo: Echo | None = None,
        interrupted: Callable[[], bool] | None = None,
    ):
        self.run = run
        self.echo = echo
        self.interrupted = interrupted
        self.progress = Progress(run, every=every)
        self.every = every
        self.pending: dict[tuple[str, int], MetricPoint] = {}
        self._last_flush = time.monotonic()
        self.best_val_loss = run.best_val_loss
        self.last_val_loss = run.last_val_loss
        self.log_lines = 0
        self.last_metrics: dict = {}

    def report(self, kind: str, payload: dict) -> None:
        self.progress.check_owner()  # a worker that lost the run writes no more rows (OwnershipLost)
        if self.echo is not None:
            self.echo(describe(kind, payload))
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            log.debug("run %s: unhandled report %s", self.run.pk, kind)
            return
        handler(payload)

    def should_stop(self) -> bool:
        self.flush_points()
        if self.interrupted is not None and self.interrupted():
            return True
        return self.progress.should_stop()

    # ------------------------------------------------------------------ events

    def _point(self, kind: str, payload: dict, values: dict) -> None:
        step = int(payload["step"])
        # Evals and samples come right after the step's metrics and carry fewer counters: borrow theirs, so every
        # chart can use tokens or time as its x axis.
        tokens, elapsed = payload.get("tokens"), payload.get("elapsed")
        if tokens is None:
            tokens = (
                self.last_metrics.get("tokens")
                if self.last_metrics.get("step") == step
                else step * self.run.tokens_per_step
            )
        if elapsed is None:
            elapsed = self.last_metrics.get("elapsed", 0.0)
        self.pending[(kind, step)] = MetricPoint(
            run_id=self.run.pk,
            kind=kind,
            step=step,
            tokens=int(tokens or 0),
            elapsed=float(elapsed or 0.0),
            # A diverged loss, or the gradient norm of an fp16 step the GradScaler skips, is inf or nan, which
            # JSON (and so PostgreSQL's jsonb) cannot hold: the chart shows a gap there instead.
            values={
                key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in values.items()
            },
        )

    def _on_metrics(self, payload: dict) -> None:
        values = {key: value for key, value in payload.items() if key not in ("step", "tokens", "elapsed")}
        self._point("train", payload, values)
        self.last_metrics = payload
        step = int(payload["step"])
        max_steps = self.run.max_steps or 1
        self.progress.update(
            step=step,
            tokens=int(payload.get("tokens") or 0),
            last_loss=payload.get("loss"),
            tokens_per_sec=payload.get("tokens_per_sec"),
            memory_bytes=payload.get("memory") or None,
            elapsed_seconds=float(payload.get("elapsed") or 0.0),
            progress=min(1.0, step / max_steps),
            message=f"step {step:,} of {max_steps:,}, loss {payload.get('loss', float('nan')):.4f}",
        )
        if time.monotonic() - self._last_flush >= self.every:
            self.flush_points()

    def _on_eval(self, payload: dict) -> None:
        values = {key: value for key, value in payload.items() if key not in ("step", "tokens", "elapsed")}
        self._point("eval", payload, values)
        self.last_val_loss = payload.get("val_loss")
        if self.last_val_loss is not None and (self.best_val_loss is None or self.last_val_loss < self.best_val_loss):
            self.best_val_loss = self.last_val_loss
        self.flush_points()
        self.progress.update(force=True, last_val_loss=self.last_val_loss, best_val_loss=self.best_val_loss)

    def _on_samples(self, payload: dict) -> None:
        values = {key: payload[key] for key in ("parse_share", "attempt_parse_share") if payload.get(key) is not None}
        self._point("samples", payload, values)
        self.flush_points()
        self.progress.update(force=True, parse_share=payload.get("parse_share"), last_samples=payload)

    def _on_checkpoint(self, payload: dict) -> None:
        step = int(payload["step"])
        val_loss = self.pending.get(("eval", step))
        Checkpoint.objects.update_or_create(
            run_id=self.run.pk,
            step=step,
            defaults={
                "path": payload["path"],
                "size": int(payload.get("size") or 0),
                "val_loss": val_loss.values.get("val_loss") if val_loss else self._eval_at(step),
            },
        )
        self.flush_points()
        self.progress.update(force=True)

    def _on_saving(self, payload: dict) -> None:
        """A checkpoint is about to be written: its steps' points must be in the database before it exists."""
        self.flush_points()

    def _on_checkpoint_removed(self, payload: dict) -> None:
        """The engine deleted a superseded checkpoint file (see training.checkpoint_policy): its row goes too."""
        Checkpoint.objects.filter(run_id=self.run.pk, step=int(payload["step"])).delete()

    def _on_log(self, payload: dict) -> None:
        RunLogLine.objects.create(run_id=self.run.pk, message=str(payload.get("message", ""))[:5000])
        self.log_lines += 1
        if self.log_lines % 50 == 0:
            trim_log(self.run.pk)

    # ------------------------------------------------------------------ writes

    def _eval_at(self, step: int) -> float | None:
        point = MetricPoint.objects.filter(run_id=self.run.pk, kind="eval", step=step).first()
        return point.values.get("val_loss") if point else None

    def flush_points(self) -> None:
        """Upsert on (run, kind, step): steps a resumed run logs again replace the old rows, never double them."""
        self.progress.check_owner()
        if self.pending:
            MetricPoint.objects.bulk_create(
                list(self.pending.values()),
                update_conflicts=True,
                unique_fields=["run", "kind", "step"],
                update_fields=["tokens", "elapsed", "values"],
            )
            self.pending.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush_points()
        self.progress.flush()
        trim_log(self.run.pk)


def trim_log(run_id: int, keep: int = KEEP_LOG_LINES) -> None:
    newest = RunLogLine.objects.filter(run_id=run_id).order_by("-id")[:keep]
    oldest_kept = newest.aggregate(Min("id"))["id__min"] if newest else None
    if oldest_kept is not None:
        RunLogLine.objects.filter(run_id=run_id, id__lt=oldest_kept).delete()


def describe(kind: str, payload: dict) -> str:
    """One terminal line per report, for `manage.py train` in the foreground."""
    if kind == "log":
        return str(payload.get("message", ""))
    if kind == "metrics":
        return (
            f"step {payload['step']:>7,}  loss {payload['loss']:.4f}  lr {payload['lr']:.2e}  "
            f"grad {payload['grad_norm']:.3f}  {payload['tokens_per_sec']:,.0f} tokens/s"
        )
    if kind == "eval":
        return f"step {payload['step']:>7,}  val loss {payload['val_loss']:.4f}  perplexity {payload['perplexity']:.2f}"
    if kind == "samples":
        share = payload.get("parse_share")
        return f"step {payload['step']:>7,}  samples: {'—' if share is None else f'{share:.0%}'} of code parses"
    if kind == "checkpoint":
        best = ", best validation loss so far" if payload.get("best") else ""
        return f"checkpoint {payload['path']} ({payload.get('size', 0):,} bytes{best})"
    if kind == "checkpoint_removed":
        return f"removed superseded checkpoint {payload['path']}"
    if kind == "saving":
        return f"saving a checkpoint at step {payload['step']:,}"
    return f"{kind}: {payload}"


def execute_run(
    run: TrainingRun, *, echo: Echo | None = None, interrupted: Callable[[], bool] | None = None
) -> tuple[str, str]:
    """The task body: train the run's config on its dataset, resuming from the run directory's checkpoints."""
    config = RunConfig.from_dict(run.config)
    run.directory.mkdir(parents=True, exist_ok=True)
    info = device_info(pick_device(config.train.device))
    processes = launch.world_size(config)
    where = f" × {processes} processes" + (f" on {config.train.nnodes} nodes" if config.train.nnodes > 1 else "")
    TrainingRun.objects.filter(pk=run.pk).update(
        device=f"{info['type']} · {info['name']}" + (where if processes > 1 else "")
    )
    recorder = RunRecorder(run, echo=echo, interrupted=interrupted)
    recorder.report(
        "log", {"message": f"worker {run.worker} took the run" + (f" (resume #{run.resumes})" if run.resumes else "")}
    )
    try:
        if launch.is_distributed(config):
            result = train_with_torchrun(run, config, recorder)
        else:
            result = train_in_process(run, config, recorder)
    finally:
        recorder.close()
    TrainingRun.objects.filter(pk=run.pk).update(
        cancel_requested=False, step=result.step, tokens=result.tokens, last_loss=result.final_loss
    )
    loss = f", loss {result.final_loss:.4f}" if result.final_loss is not None else ""
    if result.status == "stopped":
        return JobStatus.STOPPED, f"stopped at step {result.step:,}{loss}; resume continues from its checkpoint"
    return JobStatus.FINISHED, f"finished at step {result.step:,}{loss}"


def train_in_process(run: TrainingRun, config: RunConfig, recorder: RunRecorder) -> engine.TrainResult:
    """One process: the engine runs in this worker, with sample generations."""
    dataset_dir = run.dataset.directory
    try:
        sample_fn = make_sample_fn(dataset_dir, config.train)
    except (OSError, ValueError) as exc:  # sampling is a bonus; training goes on without it
        recorder.report("log", {"message": f"no sample generations: {exc}"})
        sample_fn = None
    return engine.train(
        config,
        dataset_dir,
        run.directory,
        report=recorder.report,
        should_stop=recorder.should_stop,
        resume=True,
        sample_fn=sample_fn,
    )


def train_with_torchrun(run: TrainingRun, config: RunConfig, recorder: RunRecorder) -> engine.TrainResult:
    """Several processes: torchrun launches the engine on this node's ranks (other nodes run the same command,
    shown on the run page); rank 0's events come back as lines, a stop request goes out as the stop file."""
    out_dir = run.directory
    launch.prepare(config, out_dir)
    clear_ranks(out_dir)
    command = launch.torchrun_command(config, run.dataset.directory, out_dir, rdzv_id=f"hrgc-run-{run.pk}")
    recorder.report("log", {"message": "torchrun: " + " ".join(command[1:])})
    result = launch.run_torchrun(command, out_dir, report=recorder.report, should_stop=recorder.should_stop)
    checkpoint = result.get("checkpoint_path")
    return engine.TrainResult(
        status=result["status"],
        step=int(result["step"]),
        tokens=int(result["tokens"]),
        final_loss=result.get("final_loss"),
        final_val_loss=result.get("final_val_loss"),
        checkpoint_path=Path(checkpoint) if checkpoint and checkpoint != "None" else None,
    )


def train_run(run_id: int) -> str:
    """django-q2 entry point (cluster `long`): claims the queued run, so a redelivered task never trains twice."""
    mark_dead_runs()
    status = run_job(TrainingRun, run_id, execute_run, allowed=(JobStatus.QUEUED,))
    # A family comparison waiting on this run queues its evaluations now, with nobody watching.
    from evaluation.comparisons import run_ended

    run_ended(run_id)
    return status
