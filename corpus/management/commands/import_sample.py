"""Build the bundled sample git repositories under the data dir and import them (the UI's one-click button)."""

from corpus.management.commands._jobs import run_or_enqueue
from corpus.models import Source
from corpus.services import fetch_jobs
from hrgc_site.commands import PipelineCommand


class Command(PipelineCommand):
    help = "Build the sample Go repositories (DATA_DIR/sample-repos) and import their pull requests."

    def add_arguments(self, parser):
        parser.add_argument("--enqueue", action="store_true", help="queue the job for a worker instead")

    def handle(self, *args, enqueue, **options):
        job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, enqueue=False)
        run_or_enqueue(self, job, queue=enqueue)
