"""Forms of the evaluation app: make a suite, evaluate a checkpoint or an exported model."""

from __future__ import annotations

from django import forms

from evaluation.models import EvalSuite
from evaluation.services.evaluations import DEFAULT_SETTINGS, SETTING_LIMITS
from evaluation.services.suites import DEFAULT_TASKS, MAX_TASKS
from training.models import DatasetBuild, name_validator


class SuiteForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=DatasetBuild.objects.none(), empty_label=None)
    name = forms.CharField(max_length=100, validators=[name_validator], help_text="Letters, digits, . _ -")
    task_count = forms.IntegerField(min_value=1, max_value=MAX_TASKS, initial=DEFAULT_TASKS, label="Tasks")
    description = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = DatasetBuild.objects.filter(status="finished")


class EvaluateForm(forms.Form):
    suite = forms.ModelChoiceField(queryset=EvalSuite.objects.all(), empty_label=None)
    step = forms.IntegerField(required=False, min_value=0, help_text="Blank: the latest checkpoint")
    max_attempts = forms.IntegerField(
        min_value=SETTING_LIMITS["max_attempts"][0],
        max_value=SETTING_LIMITS["max_attempts"][1],
        initial=DEFAULT_SETTINGS["max_attempts"],
        label="Attempts",
    )
    max_tokens = forms.IntegerField(
        min_value=SETTING_LIMITS["max_tokens"][0],
        max_value=SETTING_LIMITS["max_tokens"][1],
        initial=DEFAULT_SETTINGS["max_tokens"],
        label="Tokens per attempt",
    )

    def settings(self) -> dict:
        return {key: self.cleaned_data[key] for key in ("max_attempts", "max_tokens")}
