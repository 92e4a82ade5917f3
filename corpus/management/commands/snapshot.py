"""Create or list corpus snapshots: frozen, counted, hashed JSONL files of the included pull requests."""

from django.core.management.base import CommandError

from corpus.models import Snapshot
from corpus.services import snapshots
from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import ActionRefused, Invalid
from hrgc_site.jobs import run_job
from hrgc_site.models import split_message


class Command(PipelineCommand):
    help = "snapshot create NAME [--description TEXT] | snapshot list"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="freeze the included corpus under NAME")
        create.add_argument("name")
        create.add_argument("--description", default="")
        create.add_argument("--enqueue", action="store_true", help="queue it for a worker instead")
        sub.add_parser("list", help="list snapshots")

    def handle(self, *args, action, **options):
        if action == "list":
            snaps = Snapshot.objects.order_by("created_at")
            if not snaps:
                self.stdout.write("No snapshots yet: `snapshot create NAME` freezes the included pull requests.")
                return
            self.stdout.write("name\tstatus\tPRs\trepositories\tcharacters\tsha256\tfile")
            for snap in snaps:
                self.stdout.write(
                    f"{snap.name}\t{snap.status}\t{snap.pr_count} PRs\t{snap.repo_count} repos\t"
                    f"{snap.chars} chars\t{snap.sha256 or '-'}\t{snap.file_path or '-'}"
                )
            return
        try:
            snap = snapshots.create_snapshot(
                name=options["name"], description=options["description"], enqueue=options["enqueue"]
            )
        except ActionRefused as exc:
            raise CommandError("; ".join(exc.messages if isinstance(exc, Invalid) else [str(exc)])) from None
        if options["enqueue"]:
            self.stdout.write(f"queued snapshot {snap.name}")
            return
        status = run_job(Snapshot, snap.pk, snapshots.write_snapshot)
        snap.refresh_from_db()
        if status != "finished":
            raise CommandError(f"snapshot {snap.name} {status}: {split_message(snap.message)[0]}")
        self.stdout.write(
            f"snapshot {snap.name}: {snap.pr_count} PRs from {snap.repo_count} repositories, "
            f"{snap.chars} chars, {snap.no_intent_count} whose plan has no intent\n"
            f"{snap.file_path}\nsha256 {snap.sha256}"
        )
