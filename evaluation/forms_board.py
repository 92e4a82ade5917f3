"""The Compare families form: preset, seeds, token budget, and a suite or a task count."""

from __future__ import annotations

from django import forms

from evaluation.comparisons import MAX_SEEDS, parse_seeds
from evaluation.models import EvalSuite
from hrgc_site.errors import ActionRefused
from training.hrm.config import PRESETS


class CompareForm(forms.Form):
    preset = forms.ChoiceField(choices=[(p, p) for p in PRESETS], initial="tiny")
    seeds = forms.CharField(
        initial="1", max_length=100, help_text=f"One hrm and one gpt run per seed, e.g. 1,2,3 (at most {MAX_SEEDS})"
    )
    tokens = forms.IntegerField(
        min_value=1, label="Token budget", help_text="Training tokens of every run (max_steps × tokens per step)"
    )
    suite = forms.ModelChoiceField(
        queryset=EvalSuite.objects.none(),
        required=False,
        empty_label="a new suite of the validation split",
        help_text="Where every run is evaluated",
    )
    task_count = forms.IntegerField(
        min_value=1, max_value=1000, initial=20, label="Tasks", help_text="Tasks of the new suite (when none is chosen)"
    )
    max_attempts = forms.IntegerField(
        min_value=1, max_value=10, initial=3, label="Attempts", help_text="Refinement attempts per task"
    )
    max_tokens = forms.IntegerField(
        min_value=8, max_value=4096, initial=256, label="Tokens per attempt", help_text="Generated code per attempt"
    )

    def __init__(self, *args, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        if dataset is not None:
            self.fields["suite"].queryset = EvalSuite.objects.filter(dataset__tokenizer=dataset.tokenizer_id)

    def clean_seeds(self) -> list[int]:
        try:
            return parse_seeds(self.cleaned_data["seeds"])
        except ActionRefused as refusal:
            raise forms.ValidationError(str(refusal)) from None
