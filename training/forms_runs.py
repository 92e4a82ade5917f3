"""The new-run form: dataset, family, preset, name, and every hyperparameter shown with its preset default."""

from __future__ import annotations

import re
from dataclasses import fields

from django import forms

from hrgc_site.models import JobStatus
from training.hrm.config import FAMILIES, PRESETS, ModelConfig, RunConfig, TrainConfig
from training.models import DatasetBuild, TrainingRun, name_validator
from training.services_runs import base_config

# Not user settings: the family is chosen above and the vocabulary comes from the dataset.
FIXED_MODEL_FIELDS = ("family", "vocab_size")
SECTIONS = {"model": ModelConfig, "train": TrainConfig}
DEVICE_CHOICES = [(d, d) for d in ("auto", "cpu", "cuda", "mps")]


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


def field_name(section: str, name: str) -> str:
    return f"{section}__{name}"


class RunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=DatasetBuild.objects.none(), help_text="A finished dataset build")
    family = forms.ChoiceField(choices=[(f, f) for f in FAMILIES], initial="hrm",
                               help_text="hrm: planner and generator stacks with recursion; gpt: the plain decoder")
    preset = forms.ChoiceField(choices=[(p, p) for p in PRESETS], initial="tiny",
                               help_text="tiny trains on a CPU in minutes; seed is the 20–30 M model of the seed")
    name = forms.CharField(max_length=100, validators=[name_validator])
    parent = forms.ModelChoiceField(queryset=TrainingRun.objects.all(), required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = DatasetBuild.objects.filter(status=JobStatus.FINISHED).order_by(
            "-created_at")
        family = self._chosen("family", "hrm")
        preset_name = self._chosen("preset", "tiny")
        defaults = RunConfig() if family not in FAMILIES or preset_name not in PRESETS else base_config(
            family, preset_name, None)
        self.setting_names: dict[str, list[str]] = {"model": [], "train": []}
        for section, name, kind in setting_fields():
            default = getattr(getattr(defaults, section), name)
            key = field_name(section, name)
            self.fields[key] = self._make_field(name, kind, default)
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
            return forms.BooleanField(required=False, initial=default, label=label, help_text=help_text,
                                      widget=forms.CheckboxInput(attrs=attrs))
        if name == "device":
            return forms.ChoiceField(choices=DEVICE_CHOICES, initial=default, label=label, help_text=help_text,
                                     widget=forms.Select(attrs=attrs))
        if kind is int:
            return forms.IntegerField(initial=default, label=label, help_text=help_text, widget=forms.NumberInput(attrs=attrs))
        if kind is float:
            return forms.FloatField(initial=default, label=label, help_text=help_text,
                                    widget=forms.NumberInput(attrs={**attrs, "step": "any"}))
        return forms.CharField(initial=default, label=label, help_text=help_text, widget=forms.TextInput(attrs=attrs))

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(section, [self[key] for key in keys]) for section, keys in self.setting_names.items()]

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
            self.config = base.with_overrides({key: str(value) for key, value in overrides.items()})
        except ValueError as exc:
            self._attach_config_error(str(exc))
            return cleaned
        self.overrides = overrides
        return cleaned

    def _attach_config_error(self, message: str) -> None:
        """Put RunConfig's complaint beside the field it names (the first one mentioned), else on the form."""
        for word in re.findall(r"[a-z_0-9]+", message):
            for section in ("train", "model"):
                key = field_name(section, word)
                if key in self.fields:
                    self.add_error(key, message)
                    return
        self.add_error(None, message)
