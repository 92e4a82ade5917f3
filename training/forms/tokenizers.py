"""Forms that start and retry tokenizer trainings."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from training.models import TokenizerVersion
from training.services.tokenizers import finished_snapshots


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
        self.fields["snapshot"].queryset = finished_snapshots()
        self.fields["snapshot"].empty_label = None
        self.fields["name"].initial = _default_name("tok")
        self.fields["vocab_size"].help_text = (
            "Pieces in the vocabulary (the seed uses 50,000). Too large for the "
            "corpus? The failure says the largest size that works."
        )
        match_model_limits(self)
        # A PositiveIntegerField's form field also says "at least 0", and says it first: 300 is the bound.
        vocab = self.fields["vocab_size"]
        vocab.validators = [v for v in vocab.validators if getattr(v, "limit_value", None) != 0]


class RetryTokenizerForm(forms.Form):
    # The same bounds as TokenizerVersion.vocab_size's validators.
    vocab_size = forms.IntegerField(min_value=300, max_value=1_000_000)
