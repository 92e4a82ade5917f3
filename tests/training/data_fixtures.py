"""A finished snapshot made of real serialized pull requests, for the tokenizer and dataset tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from corpus.records import FileRecord, PRRecord
from corpus.serialize import build_parts, snapshot_line

GO = Path(__file__).resolve().parents[1] / "fixtures" / "go"
# (before, after, title, body) of each change; the Go files are real-looking sources with tabs and Unicode.
CHANGES = [
    (
        "fix_server_before.go",
        "fix_server_after.go",
        "Fix nil config crash in server start",
        "Start panicked when the config was nil. Return an error instead.\n\nFixes #12",
    ),
    (
        "add_cache_before.go",
        "add_cache_after.go",
        "Add an LRU cache to the lookup path",
        "Lookups hit the disk every time; cache the last 128 entries.",
    ),
    (
        "refactor_store_before.go",
        "refactor_store_after.go",
        "Refactor the store behind an interface",
        "Split the store into a Store interface and a file-backed implementation.",
    ),
    (
        "optimize_join_before.go",
        "optimize_join_after.go",
        "Optimize path joining",
        "Use a strings.Builder instead of repeated concatenation — 3× faster ünïcode-safe.",
    ),
]
REPOS = ("acme/server", "globex/cache", "initech/store", "umbrella/paths", "hooli/search", "stark/armor")


def pr_records(repos=REPOS, per_repo: int = 2) -> list[PRRecord]:
    records = []
    for r, repo in enumerate(repos):
        for i in range(per_repo):
            before, after, title, body = CHANGES[(r + i) % len(CHANGES)]
            records.append(
                PRRecord(
                    repo=repo,
                    number=100 + i,
                    title=f"{title} ({repo})",
                    body=body,
                    author=f"dev{r}",
                    files=[
                        FileRecord(
                            path=f"pkg/{after.replace('_after', '')}",
                            status="modified",
                            before=(GO / before).read_text(encoding="utf-8"),
                            after=(GO / after).read_text(encoding="utf-8"),
                        )
                    ],
                )
            )
    return records


def merged_at(pr: PRRecord) -> str:
    return pr.merged_at.isoformat() if pr.merged_at else ""


def write_snapshot_file(path: Path, records: list[PRRecord]) -> tuple[str, int, int]:
    """The JSONL a snapshot job writes; returns (sha256, records, characters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, chars = hashlib.sha256(), 0
    with open(path, "wb") as handle:
        for pr in records:
            line = (
                json.dumps(
                    snapshot_line(
                        repo=pr.repo, number=pr.number, title=pr.title, parts=build_parts(pr), merged_at=merged_at(pr)
                    ),
                    ensure_ascii=False,
                ).encode()
                + b"\n"
            )
            text = json.loads(line)["text"]
            handle.write(line)
            digest.update(line)
            chars += len(text)
    return digest.hexdigest(), len(records), chars


def make_snapshot(data_dir: Path, name: str = "snap-test", repos=REPOS, per_repo: int = 2):
    """A finished Snapshot row whose JSONL file lies under data_dir/snapshots."""
    from corpus.models import Snapshot
    from hrgc_site.models import JobStatus

    path = Path(data_dir) / "snapshots" / f"{name}.jsonl"
    sha256, count, chars = write_snapshot_file(path, pr_records(repos, per_repo))
    return Snapshot.objects.create(
        name=name,
        status=JobStatus.FINISHED,
        file_path=str(path),
        sha256=sha256,
        pr_count=count,
        repo_count=len(repos),
        chars=chars,
        progress=1.0,
        message=f"{count} records",
    )
