"""The form that starts a dataset build."""

from __future__ import annotations

from django import forms

from training.forms.tokenizers import _default_name, match_model_limits
from training.models import DatasetBuild
from training.services.tokenizers import finished_snapshots, finished_tokenizers


class DatasetForm(forms.ModelForm):
    class Meta:
        model = DatasetBuild
        fields = ("snapshot", "tokenizer", "name", "processes", "seq_len")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = finished_snapshots()
        self.fields["snapshot"].empty_label = None
        tokenizer = self.fields["tokenizer"]
        tokenizer.queryset = finished_tokenizers()
        tokenizer.empty_label = None
        tokenizer.label_from_instance = lambda t: f"{t.name} ({t.vocab_size:,} pieces, {t.snapshot})"
        self.fields["name"].initial = _default_name("ds")
        self.fields["processes"].help_text = "Tokenizer processes working in parallel."
        self.fields["seq_len"].label = "Sequence length"
        self.fields["seq_len"].help_text = "Tokens per packed training sequence (gpt family)."
        match_model_limits(self)
