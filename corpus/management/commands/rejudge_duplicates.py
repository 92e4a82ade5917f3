"""`manage.py rejudge_duplicates`: judge near duplicates again on each PR's change, not its whole files."""

from __future__ import annotations

from corpus.services.dedupe import rejudge_duplicates
from hrgc_site.commands import PipelineCommand


class Command(PipelineCommand):
    help = (
        "Refresh stored plans and records of older rows, then flag exact and near duplicates on the change "
        "(title and changed declarations). PRs the old whole-file rule excluded come back unless a person "
        "excluded them."
    )

    def handle(self, *args, **options):
        counts = rejudge_duplicates(report=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['exact']} exact and {counts['near']} near duplicates; {counts['changed']} pull requests "
                f"changed state, {counts['came_back']} came back; {counts['refreshed']} re-hashed; "
                f"{counts['no_declaration']} flagged or cleared as changing no declaration"
            )
        )
