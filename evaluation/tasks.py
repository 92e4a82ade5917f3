"""django-q2 entry points of the evaluation app (cluster `hrgc`)."""

from evaluation.models import Evaluation
from hrgc_site.jobs import run_job


def evaluate_task(evaluation_id: int) -> str:
    from evaluation.comparisons import evaluation_ended
    from evaluation.services.job import run_evaluation

    status = run_job(Evaluation, evaluation_id, run_evaluation)
    evaluation_ended(evaluation_id)  # a family comparison waiting on it gives its verdict now
    return status
