"""Fetch merged Go pull requests of GitHub repositories (in the foreground unless --enqueue)."""

from django.core.management.base import CommandError

from corpus.management.commands._jobs import run_or_enqueue
from corpus.models import GitHubSettings, Source
from corpus.services import fetch_jobs, repositories
from hrgc_site.commands import PipelineCommand


class Command(PipelineCommand):
    help = "Fetch merged pull requests of owner/name repositories from the GitHub API (same code as the worker)."

    def add_arguments(self, parser):
        parser.add_argument("repos", nargs="+", help="owner/name (or a github.com URL)")
        parser.add_argument("--enqueue", action="store_true", help="queue the job for a worker instead")
        parser.add_argument("--api-url", default="", help="API base URL (default: the settings form or GITHUB_API_URL)")
        parser.add_argument("--token", default="", help="token for this run only (never stored)")

    def handle(self, *args, repos, enqueue, api_url, token, **options):
        if enqueue and token:
            raise CommandError(
                "--token works only in the foreground; queued jobs use the settings form or GITHUB_TOKEN"
            )
        names = []
        for name in repos:
            try:
                names.append(repositories.validate_repository_name(name))
            except Exception as exc:  # noqa: BLE001 - ValueError or ValidationError, said clearly
                raise CommandError(str(getattr(exc, "message", exc))) from None
        repositories.add_repositories(names=names)
        job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=names, api_url=api_url.rstrip("/"), enqueue=False)
        self.stdout.write(
            f"fetch job #{job.pk}: {len(names)} repositories from {api_url or GitHubSettings.load().effective_api_url}"
        )
        run_or_enqueue(self, job, queue=enqueue, **({"token": token} if token else {}))
