"""Forms that start tokenizer trainings and dataset builds."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from training import services_data
from training.models import DatasetBuild, TokenizerVersion


def _default_name(prefix: str) -> str:
    return f"{prefix}-{timezone.localtime():%Y%m%d-%H%M%S}"


def match_model_limits(form: forms.ModelForm) -> None:
    """Number inputs' min/max from the model field's validators, so the browser asks what the server checks."""
    for name, field in form.fields.items():
        if not isinstance(field, forms.IntegerField):
            continue
        validators = form._meta.model._meta.get_field(name).validators
        lows = [v.limit_value for v in validators if isinstance(v, MinValueValidator)]
        highs = [v.limit_value for v in validators if isinstance(v, MaxValueValidator)]
        if lows:
            field.widget.attrs["min"] = max(lows)
        if highs:
            field.widget.attrs["max"] = min(highs)


class TokenizerForm(forms.ModelForm):
    class Meta:
        model = TokenizerVersion
        fields = ("snapshot", "name", "vocab_size")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = services_data.finished_snapshots()
        self.fields["snapshot"].empty_label = None
        self.fields["name"].initial = _default_name("tok")
        self.fields["vocab_size"].help_text = (
            "Pieces in the vocabulary (the seed uses 50,000). Too large for the "
            "corpus? The failure says the largest size that works."
        )
        match_model_limits(self)


class RetryTokenizerForm(forms.Form):
    # The same bounds as TokenizerVersion.vocab_size's validators.
    vocab_size = forms.IntegerField(min_value=300, max_value=1_000_000)


class DatasetForm(forms.ModelForm):
    class Meta:
        model = DatasetBuild
        fields = ("snapshot", "tokenizer", "name", "processes", "seq_len")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = services_data.finished_snapshots()
        self.fields["snapshot"].empty_label = None
        tokenizer = self.fields["tokenizer"]
        tokenizer.queryset = services_data.finished_tokenizers()
        tokenizer.empty_label = None
        tokenizer.label_from_instance = lambda t: f"{t.name} ({t.vocab_size:,} pieces, {t.snapshot})"
        self.fields["name"].initial = _default_name("ds")
        self.fields["processes"].help_text = "Tokenizer processes working in parallel."
        self.fields["seq_len"].label = "Sequence length"
        self.fields["seq_len"].help_text = "Tokens per packed training sequence (gpt family)."
        match_model_limits(self)
