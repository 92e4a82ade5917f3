"""django-q2 entry points of the registry."""

from hrgc_site.jobs import run_job
from models_registry.models import ExportedModel


def export_task(export_id: int) -> str:
    from models_registry.services import run_export

    return run_job(ExportedModel, export_id, run_export)
