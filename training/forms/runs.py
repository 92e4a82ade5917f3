"""The new-run form: dataset, family, preset, name, and every hyperparameter shown with its preset default."""

from __future__ import annotations

import re
from dataclasses import fields

from django import forms

from hrgc_site.models import JobStatus
from training.hrm.config import (
    COMPILE_CHOICES,
    FAMILIES,
    MODEL_LIMITS,
    PRESETS,
    TRAIN_AT_LEAST_ONE,
    TRAIN_LIMITS,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from training.models import DatasetBuild, TrainingRun, name_validator
from training.services.runs import (
    SIZE_SETTINGS,
    base_config,
    dataset_problem,
    size_problem,
)

# Not user settings: the family is chosen above and the vocabulary comes from the dataset.
FIXED_MODEL_FIELDS = ("family", "vocab_size")
SECTIONS = {"model": ModelConfig, "train": TrainConfig}
# Settings only the hrm family reads (gpt has no planner/generator stacks or cycles): hidden on a gpt form.
HRM_ONLY = ("h_cycles", "l_cycles", "full_backprop", "planner_lr_multiplier", "generator_lr_multiplier")
DEVICE_CHOICES = [(d, d) for d in ("auto", "cpu", "cuda", "mps")]
CHOICES = {"device": DEVICE_CHOICES, "compile": [(c, c) for c in COMPILE_CHOICES]}
# One line per setting: what it does (the seed's hyperparameter table, then ours).
SETTING_HELP = {
    "n_embd": "Width of every hidden state (embedding size).",
    "n_head": "Attention heads per layer; n_embd / n_head must be even.",
    "n_layer": "hrm: blocks per stack (planner and generator each); gpt: decoder blocks in all.",
    "intermediate_size": "Hidden width of each SwiGLU feed-forward layer.",
    "h_cycles": "hrm: planner (high-level) cycles per forward pass.",
    "l_cycles": "hrm: generator (low-level) steps per planner cycle.",
    "block_size": "Training window and generator context, in tokens; must fit both dataset splits.",
    "rope_theta": "Base of the rotary position embedding's frequencies.",
    "norm_eps": "Epsilon of the RMS normalisation.",
    "dropout": "Share of activations dropped while training, in [0, 1).",
    "full_backprop": "hrm: gradient through every cycle, not only the last one (slower, more memory).",
    "tie_embeddings": "Share the input embedding and output head weights.",
    "learning_rate": "Peak learning rate, reached after warm-up, then decayed on a cosine.",
    "batch_size": "Sequences per micro-batch.",
    "gradient_accumulation_steps": "Micro-batches summed per optimizer step (effective batch = batch × this).",
    "max_steps": "Optimizer steps the run trains for.",
    "warmup_steps": "Steps of linear learning-rate warm-up; keep it below max_steps.",
    "weight_decay": "AdamW weight decay on the weight matrices.",
    "fp16": "Mixed precision where the device supports it (bf16 preferred).",
    "save_steps": "Save a checkpoint every N steps (and at the end or on stop).",
    "eval_steps": "Measure the validation loss every N steps.",
    "logging_steps": "Record the training metrics every N steps.",
    "planner_lr_multiplier": "Planner learning rate = learning_rate × this (planner trains slightly faster).",
    "generator_lr_multiplier": "Generator learning rate = learning_rate × this (generator more conservative).",
    "refinement_warmup": "Steps before the refinement decisions count in the loss (start refinement later).",
    "max_refinement_iterations": "Most generate-check-refine attempts per sample.",
    "validation_frequency": "Generate samples and check them with the Go parser every N steps.",
    "plan_loss_weight": "Loss weight of plan tokens.",
    "code_loss_weight": "Loss weight of code tokens.",
    "refinement_loss_weight": "Loss weight of the refinement decisions.",
    "other_loss_weight": "Loss weight of the remaining text (repository, PR text, context, tags).",
    "min_lr_ratio": "Learning rate at the end, as a share of the peak.",
    "grad_clip": "Clip the gradient norm to this (0: no clipping).",
    "beta1": "AdamW β1 (momentum).",
    "beta2": "AdamW β2 (second-moment decay).",
    "eval_iters": "Validation batches per evaluation.",
    "sample_count": "Samples generated at each validation_frequency step.",
    "sample_max_tokens": "Longest sample, in tokens.",
    "seed": "Random seed of weights and batches: same seed, same run.",
    "device": "Where it trains: auto picks CUDA, then MPS, then CPU.",
    "compile": "torch.compile the model (slow start, faster steps): auto = on a GPU, and long CPU runs of big models.",
    "keep_last_checkpoints": "Keep only the newest N checkpoints besides the best and the latest (0: keep all).",
    "num_threads": "CPU threads for PyTorch (0: its default).",
    "nproc_per_node": "Processes per node (one per GPU): above one in all, the worker launches torchrun (DDP).",
    "nnodes": "Nodes taking part; the others join with the command the run page shows.",
    "rdzv_endpoint": "Rendezvous address host:port of the first node (needed with several nodes).",
}


def setting_fields() -> list[tuple[str, str, type]]:
    """(section, name, python type) of every editable hyperparameter, in the dataclasses' order."""
    result = []
    for section, cls in SECTIONS.items():
        defaults = cls()
        for f in fields(cls):
            if section == "model" and f.name in FIXED_MODEL_FIELDS:
                continue
            result.append((section, f.name, type(getattr(defaults, f.name))))
    return result


def only_family(name: str) -> str:
    """'hrm' for a setting only the hrm family reads, '' for one both read."""
    return "hrm" if name in HRM_ONLY else ""


def field_name(section: str, name: str) -> str:
    return f"{section}__{name}"


class RunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=DatasetBuild.objects.none(), help_text="A finished dataset build")
    family = forms.ChoiceField(
        choices=[(f, f) for f in FAMILIES],
        initial="hrm",
        help_text="hrm: planner and generator stacks with recursion; gpt: the plain decoder",
    )
    preset = forms.ChoiceField(
        choices=[(p, p) for p in PRESETS],
        initial="tiny",
        help_text="tiny trains on a CPU in minutes; seed is the 20–30 M model of the seed",
    )
    name = forms.CharField(max_length=100, validators=[name_validator])
    parent = forms.ModelChoiceField(queryset=TrainingRun.objects.all(), required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = DatasetBuild.objects.filter(status=JobStatus.FINISHED).order_by("-created_at")
        family = self._chosen("family", "hrm")
        preset_name = self._chosen("preset", "tiny")
        self.chosen_family = family  # not `family`: the template would read the field of that name
        defaults = (
            RunConfig()
            if family not in FAMILIES or preset_name not in PRESETS
            else base_config(family, preset_name, None)
        )
        self.setting_names: dict[str, list[str]] = {"model": [], "train": []}
        for section, name, kind in setting_fields():
            default = getattr(getattr(defaults, section), name)
            key = field_name(section, name)
            self.fields[key] = self._make_field(name, kind, default)
            self._set_limits(section, name, self.fields[key])
            self.setting_names[section].append(key)

    def _chosen(self, key: str, fallback: str) -> str:
        if self.is_bound:
            return self.data.get(key) or fallback
        return self.initial.get(key) or fallback

    @staticmethod
    def _make_field(name: str, kind: type, default) -> forms.Field:
        help_text = f"preset: {default}"
        label = name
        # Booleans as JSON writes them, so the page compares them with the preview's defaults as strings.
        attrs = {"data-default": str(default).lower() if kind is bool else str(default), "class": "setting"}
        if kind is bool:
            return forms.BooleanField(
                required=False,
                initial=default,
                label=label,
                help_text=help_text,
                widget=forms.CheckboxInput(attrs=attrs),
            )
        if name in CHOICES:
            return forms.ChoiceField(
                choices=CHOICES[name],
                initial=default,
                label=label,
                help_text=help_text,
                widget=forms.Select(attrs=attrs),
            )
        if kind is int:
            return forms.IntegerField(
                initial=default, label=label, help_text=help_text, widget=forms.NumberInput(attrs=attrs)
            )
        if kind is float:
            return forms.FloatField(
                initial=default,
                label=label,
                help_text=help_text,
                widget=forms.NumberInput(attrs={**attrs, "step": "any"}),
            )
        return forms.CharField(
            initial=default,
            required=default != "",  # an empty default (rdzv_endpoint) may stay empty
            label=label,
            help_text=help_text,
            widget=forms.TextInput(attrs=attrs),
        )

    @staticmethod
    def _set_limits(section: str, name: str, field: forms.Field) -> None:
        """The browser's min/max are RunConfig.validate's bounds, so it refuses what the server would."""
        attrs = field.widget.attrs
        if section == "model" and name in MODEL_LIMITS:
            attrs.update(min="1", max=str(MODEL_LIMITS[name]))
        elif section == "train" and name in TRAIN_AT_LEAST_ONE:
            attrs["min"] = "1"
        elif name in ("warmup_steps", "refinement_warmup", "dropout", "keep_last_checkpoints", "seed") or name.endswith(
            "_loss_weight"
        ):
            attrs["min"] = "0"
        if section == "train" and name in TRAIN_LIMITS:
            attrs["max"] = str(TRAIN_LIMITS[name])
        # Bounds the browser's min/max cannot say (they are inclusive): run_form.js checks these.
        if name == "dropout":
            attrs.update({"max": "1", "data-below": "1"})
        elif name == "learning_rate":
            attrs.update({"min": "0", "data-above": "0"})
        elif name == "n_head":
            attrs["data-divides"] = field_name("model", "n_embd")

    def sections(self) -> list[tuple[str, list[tuple[forms.BoundField, str, str]]]]:
        """Per section, each setting's field with its one-line description and the one family it is for ('' = both)."""
        return [
            (
                section,
                [
                    (self[key], SETTING_HELP.get(key.split("__", 1)[1], ""), only_family(key.split("__", 1)[1]))
                    for key in keys
                ],
            )
            for section, keys in self.setting_names.items()
        ]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if TrainingRun.objects.filter(name=name).exists():
            raise forms.ValidationError("A run with this name exists already.")
        return name

    def clean(self):
        cleaned = super().clean()
        dataset, family, preset_name = cleaned.get("dataset"), cleaned.get("family"), cleaned.get("preset")
        if not dataset or not family or not preset_name:
            return cleaned
        try:
            base = base_config(family, preset_name, dataset)
        except (OSError, ValueError) as exc:
            self.add_error("dataset", f"cannot read this dataset's meta.json: {exc}")
            return cleaned
        overrides: dict[str, object] = {}
        for section, keys in self.setting_names.items():
            for key in keys:
                name = key.split("__", 1)[1]
                if key not in cleaned or cleaned[key] is None:
                    continue
                if cleaned[key] != getattr(getattr(base, section), name):
                    overrides[f"{section}.{name}"] = cleaned[key]
        try:
            self.config = base.with_overrides({key: str(value) for key, value in overrides.items()}, validate=False)
        except ValueError as exc:
            self._attach_config_error(str(exc))
            return cleaned
        # Every problem at once, each beside its own field (not the first one under "Parameters").
        problems = self.config.problems()
        for setting, message in problems:
            self._attach_problem(setting, message)
        if problems:
            return cleaned
        problem = dataset_problem(self.config, dataset)
        if problem:
            self.add_error(field_name("model", "block_size"), problem)
            return cleaned
        problem = size_problem(self.config)
        if problem:
            # Beside the size settings this form changed; on the form when the preset itself is the problem.
            changed = [field_name("model", name) for name in SIZE_SETTINGS if f"model.{name}" in overrides]
            for key in changed or [None]:
                self.add_error(key, problem)
            return cleaned
        self.overrides = overrides
        return cleaned

    def _attach_problem(self, setting: str, message: str) -> None:
        """A RunConfig problem beside its field, unless that field already shows an error."""
        for section in ("model", "train"):
            key = field_name(section, setting)
            if key in self.fields:
                if key not in self.errors:
                    self.add_error(key, message)
                return
        self.add_error(None, message)

    def _attach_config_error(self, message: str) -> None:
        """Put RunConfig's complaint beside the field it names (the first one mentioned), else on the form."""
        for word in re.findall(r"[a-z_0-9]+", message):
            for section in ("train", "model"):
                key = field_name(section, word)
                if key in self.fields:
                    self.add_error(key, message)
                    return
        self.add_error(None, message)
