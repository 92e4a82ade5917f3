"""Import merged pull requests from a local git clone (merge and squash commits), no network."""

from pathlib import Path

from django.core.management.base import CommandError

from corpus.management.commands._jobs import run_or_enqueue
from corpus.models import Source
from corpus.services import fetch_jobs, repositories
from hrgc_site.commands import PipelineCommand


class Command(PipelineCommand):
    help = "Import merged pull requests from a local git clone; re-running adds only what is new."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--repo", default="", help="owner/name to store it under (default: from the origin URL)")
        parser.add_argument("--enqueue", action="store_true", help="queue the job for a worker instead")

    def handle(self, *args, path, repo, enqueue, **options):
        clone = Path(path).expanduser().resolve()
        if not clone.is_dir():
            raise CommandError(f"{path} is not a directory")
        if repo:
            try:
                repo = repositories.validate_repository_name(repo)
            except Exception as exc:  # noqa: BLE001
                raise CommandError(str(getattr(exc, "message", exc))) from None
        job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[str(clone)], git_repo_name=repo, enqueue=False)
        run_or_enqueue(self, job, queue=enqueue)
