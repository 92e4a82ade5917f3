"""Forms of the registry: export a checkpoint, ask the playground."""

from __future__ import annotations

from django import forms

from models_registry.models import ExportedModel


class ExportForm(forms.Form):
    step = forms.IntegerField(required=False, min_value=0, help_text="Blank: the latest checkpoint")
    format = forms.ChoiceField(choices=ExportedModel.Format.choices, initial=ExportedModel.Format.GGUF)
    quant = forms.ChoiceField(choices=ExportedModel.Quant.choices, initial=ExportedModel.Quant.Q8_0)

    def __init__(self, *args, run=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run

    def clean_step(self):
        step = self.cleaned_data.get("step")
        if self.run is not None:
            checkpoints = self.run.checkpoints.all()
            if step is None:
                latest = checkpoints.order_by("-step").first()
                if latest is None:
                    raise forms.ValidationError("This run has no checkpoint yet.")
                return latest.step
            if not checkpoints.filter(step=step).exists():
                raise forms.ValidationError(f"This run has no checkpoint at step {step}.")
        return step


class PlaygroundForm(forms.Form):
    model = forms.ModelChoiceField(queryset=ExportedModel.objects.none(), empty_label=None)
    title = forms.CharField(max_length=300, initial="Fix nil pointer in handler")
    # Prompt sizes are bounded: the playground runs in the web process, for viewers too.
    body = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="This fixes a panic when r == nil",
    )
    code_before = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 8}),
        strip=False,
        initial="func handle(r *Request) {\n\tprocess(r)\n}\n",
    )
    path = forms.CharField(max_length=300, initial="main.go")
    max_iterations = forms.IntegerField(min_value=1, max_value=5, initial=5)
    max_code_tokens = forms.IntegerField(min_value=16, max_value=2048, initial=256)
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.7)
    seed = forms.IntegerField(required=False, initial=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = ExportedModel.objects.filter(
            status="finished", format=ExportedModel.Format.GGUF
        ).select_related("run")
