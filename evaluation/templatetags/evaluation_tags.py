"""The Evaluate cards of the run and model pages: their evaluations and, for operators, the form."""

from __future__ import annotations

from django import template

from evaluation.models import EvalSuite, Evaluation

register = template.Library()


def _suites(dataset):
    """Suites whose tokens the model reads: the model's own dataset's first, then those sharing its tokenizer."""
    suites = EvalSuite.objects.filter(dataset__tokenizer=dataset.tokenizer).select_related("dataset")
    return sorted(suites, key=lambda suite: (suite.dataset_id != dataset.pk, suite.name))


@register.inclusion_tag("evaluation/_evaluate_card.html", takes_context=True)
def evaluate_card(context, run=None, model=None):
    run = run or model.run
    evaluations = Evaluation.objects.filter(run=run).select_related("suite", "exported_model")
    evaluations = evaluations.filter(exported_model=model) if model else evaluations.filter(exported_model=None)
    return {
        "run": run,
        "model": model,
        "evaluations": evaluations[:20],
        "suites": _suites(run.dataset),
        "checkpoints": [] if model else run.checkpoints.order_by("-step"),
        "is_operator": context.get("is_operator"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("evaluation/_dataset_suites.html", takes_context=True)
def dataset_suites(context, dataset):
    """The dataset page's list of suites cut from its validation split, with a link to make one."""
    return {"dataset": dataset, "suites": dataset.eval_suites.all(), "is_operator": context.get("is_operator")}
