"""Git repositories for the GitHub-shaped server: a story written as real history, served over HTTP.

`build_story_repositories` writes each story repository as a bare repository (one `git
fast-import`), landing each merged pull request as a merge commit, a squash commit or a rebase
(one commit per changed file), and returns the story with the real commit ids and with each
PR's files as git reads them, so REST, GraphQL and git all tell the same story.

`GitHost` answers git's smart HTTP (through `git http-backend`, with partial clone allowed) or,
when asked, only the dumb protocol (static files after `git update-server-info`)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from corpus.gitimport import changed_files, clean_git_environ
from corpus.records import FileRecord, PRRecord, RepoRecord

Story = list[tuple[RepoRecord, list[PRRecord]]]
MERGE_STYLES = ("merge", "squash", "rebase")
MAINTAINER = "maintainer"
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def default_style(index: int) -> str:
    """merge, squash, rebase in turn, by the PR's place in merge order."""
    return MERGE_STYLES[index % 3]


def build_story_repositories(root: Path, story: Story, *, style: Callable[[int], str] = default_style) -> Story:
    """Write `root/owner/name.git` for every story repository; returns the story as git holds it."""
    root = Path(root)
    result = []
    for repo, pulls in story:
        target = root / f"{repo.full_name}.git"
        result.append((repo, _build(target, repo, pulls, style)))
    return result


def _build(target: Path, repo: RepoRecord, pulls: list[PRRecord], style: Callable[[int], str]) -> list[PRRecord]:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        subprocess.run(["rm", "-rf", str(target)], check=True)
    _git(None, "init", "-q", "--bare", "-b", repo.default_branch or "main", str(target))
    stream = _Stream(repo.default_branch or "main")
    merged = sorted((p for p in pulls if p.merged_at is not None), key=lambda p: (p.merged_at, p.number))
    tree: dict[str, bytes] = {}
    # The first text each file is seen with before a change starts the history.
    for pull in merged:
        for changed in pull.files:
            old = changed.previous_path or changed.path
            if changed.status != "added" and old not in tree:
                tree[old] = _before_bytes(changed)
    stream.commit(tree, {}, [], "Initial commit", MAINTAINER, _first_date(merged), MAINTAINER, _first_date(merged))
    plan: list[tuple[PRRecord, str, int, int, int]] = []  # (pr, style, before mark, head mark, merge mark)
    for index, pull in enumerate(merged):
        wanted = {(c.previous_path or c.path): _before_bytes(c) for c in pull.files if c.status != "added"}
        drift = {path: data for path, data in wanted.items() if tree.get(path) != data}
        if drift:  # the story's before texts do not follow from the history: a maintainer commit fixes that
            stream.commit(
                {**tree, **drift},
                tree,
                [stream.head],
                "Sync files",
                MAINTAINER,
                pull.created_at,
                MAINTAINER,
                pull.created_at,
            )
            tree = {**tree, **drift}
        new_tree = _tree_after(tree, pull)
        kind = style(index)
        before = stream.head
        author, created, merged_at = pull.author or "ghost", pull.created_at, pull.merged_at
        if kind == "merge":
            tip = stream.commit(
                new_tree,
                tree,
                [before],
                _message(pull.title, pull.body),
                author,
                created,
                author,
                created,
                ref=f"refs/pull/{pull.number}/head",
            )
            subject = f"Merge pull request #{pull.number} from {author}/pr-{pull.number}"
            head = tip
            merge = stream.commit(
                new_tree, tree, [before, tip], _message(subject, pull.title), MAINTAINER, merged_at, "GitHub", merged_at
            )
        elif kind == "squash":
            merge = stream.commit(
                new_tree,
                tree,
                [before],
                _message(f"{pull.title} (#{pull.number})", pull.body),
                author,
                created,
                "GitHub",
                merged_at,
            )
            head = merge
        else:  # rebase: one commit per changed file, replayed on the default branch
            step = dict(tree)
            groups = [pull.files[i : i + 1] for i in range(len(pull.files))] or [[]]
            merge = before
            for number, group in enumerate(groups, 1):
                nxt = _tree_after(step, dataclasses.replace(pull, files=group))
                if number == len(groups):
                    nxt = new_tree
                merge = stream.commit(
                    nxt, step, [merge], f"{pull.title} (part {number})\n", author, created, "GitHub", merged_at
                )
                step = nxt
            head = merge
        plan.append((pull, kind, before, head, merge))
        tree = new_tree
    marks = stream.run(target)
    _git(target, "config", "uploadpack.allowFilter", "true")
    _git(target, "config", "uploadpack.allowAnySHA1InWant", "true")
    _git(target, "config", "http.receivepack", "false")
    _git(target, "update-server-info")
    out = []
    by_number = {p.number: p for p in pulls}
    rewritten = {}
    for pull, _kind, before, head, merge in plan:
        base_sha, head_sha, merge_sha = marks[before], marks[head], marks[merge]
        files = changed_files(target, base_sha, merge_sha)
        rewritten[pull.number] = dataclasses.replace(
            pull, base_commit=base_sha, head_commit=head_sha, merge_commit=merge_sha, files=files
        )
    for number in by_number:
        out.append(rewritten.get(number, by_number[number]))
    return out


def _message(title: str, body: str) -> str:
    return title + (f"\n\n{body}" if body else "") + "\n"


def _first_date(merged: list[PRRecord]) -> datetime:
    dates = [p.created_at for p in merged if p.created_at] + [p.merged_at for p in merged if p.merged_at]
    return min(dates) if dates else _EPOCH


def _before_bytes(changed: FileRecord) -> bytes:
    if changed.before is not None:
        return changed.before.encode("utf-8", "surrogateescape")
    if changed.is_binary:
        return b"\x00binary " + changed.path.encode() + b"\n"
    old = [line[1:] for line in changed.patch.split("\n") if line.startswith(("-", " ")) and not line.startswith("---")]
    return ("\n".join(old) + "\n").encode() if old else f"// {changed.path}\n".encode()


def _after_bytes(changed: FileRecord, before: bytes | None) -> bytes:
    if changed.after is not None:
        return changed.after.encode("utf-8", "surrogateescape")
    if changed.is_binary:
        return b"\x00binary " + changed.path.encode() + b" changed\n"
    new = [line[1:] for line in changed.patch.split("\n") if line.startswith(("+", " ")) and not line.startswith("+++")]
    text = ("\n".join(new) + "\n").encode() if new else b""
    return text if text != before else text + b"\n"


def _tree_after(tree: dict[str, bytes], pull: PRRecord) -> dict[str, bytes]:
    result = dict(tree)
    for changed in pull.files:
        old_path = changed.previous_path or changed.path
        if changed.status == "removed":
            result.pop(changed.path, None)
            continue
        data = _after_bytes(changed, result.get(old_path))
        if changed.previous_path:
            result.pop(changed.previous_path, None)
        result[changed.path] = data
    return result


class _Stream:
    """A `git fast-import` stream under construction; marks stand for commits until it runs."""

    def __init__(self, branch: str):
        self.branch = branch
        self.parts: list[bytes] = []
        self.mark = 0
        self.head = 0

    def commit(
        self,
        tree: dict[str, bytes],
        previous: dict[str, bytes],
        parents: list[int],
        message: str,
        author: str,
        authored: datetime | None,
        committer: str,
        committed: datetime | None,
        *,
        ref: str | None = None,
    ) -> int:
        self.mark += 1
        lines = [f"commit {ref or f'refs/heads/{self.branch}'}", f"mark :{self.mark}"]
        lines.append(f"author {_ident(author)} {_stamp(authored)}")
        lines.append(f"committer {_ident(committer)} {_stamp(committed or authored)}")
        data = message.encode()
        self.parts.append(("\n".join(lines) + f"\ndata {len(data)}\n").encode() + data + b"\n")
        if parents:
            self.parts.append(f"from :{parents[0]}\n".encode())
            for parent in parents[1:]:
                self.parts.append(f"merge :{parent}\n".encode())
        base = previous if parents else {}
        for path in sorted(base.keys() - tree.keys()):
            self.parts.append(f'D "{_quote(path)}"\n'.encode())
        for path in sorted(tree):
            if base.get(path) != tree[path]:
                self.parts.append(f'M 100644 inline "{_quote(path)}"\ndata {len(tree[path])}\n'.encode())
                self.parts.append(tree[path] + b"\n")
        self.parts.append(b"\n")
        if ref is None:
            self.head = self.mark
        return self.mark

    def run(self, target: Path) -> dict[int, str]:
        with tempfile.NamedTemporaryFile("r", suffix=".marks") as marks_file:
            _git(
                target,
                "fast-import",
                "--quiet",
                "--force",
                f"--export-marks={marks_file.name}",
                stdin=b"".join(self.parts) + b"done\n",
                extra=["--done"],
            )
            marks = {}
            for line in Path(marks_file.name).read_text().splitlines():
                mark, sha = line.split()
                marks[int(mark[1:])] = sha
        return marks


def _ident(login: str) -> str:
    if login == "GitHub":
        return "GitHub <noreply@github.com>"
    return f"{login} <{login}@users.noreply.github.com>"


def _stamp(moment: datetime | None) -> str:
    moment = moment or _EPOCH
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{int(moment.timestamp())} +0000"


def _quote(path: str) -> str:
    return path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _git(cwd: Path | None, *args: str, stdin: bytes | None = None, extra: list[str] | None = None) -> bytes:
    env = {**clean_git_environ(), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    command = ["git", *(["-C", str(cwd)] if cwd else []), *args, *(extra or [])]
    result = subprocess.run(command, input=stdin, capture_output=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def link_repositories(root: Path, repositories: dict[str, Path]) -> None:
    """Serve existing repositories (owner/name -> a clone or bare repository) under `root`, as they are."""
    for full_name, path in repositories.items():
        path = Path(path).resolve()
        git_dir = path / ".git" if (path / ".git").is_dir() else path
        link = Path(root) / f"{full_name}.git"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(git_dir, target_is_directory=True)


def repository_story(path: Path, full_name: str, repo: RepoRecord | None = None) -> Story:
    """A story read from a clone's merges (the local-clone import): its records carry the clone's own commits."""
    from corpus.gitimport import iter_pull_requests

    record = repo or RepoRecord(full_name, license_spdx="MIT")
    return [(record, list(iter_pull_requests(Path(path), full_name)))]


# --- serving ------------------------------------------------------------------------------------


class GitHost:
    """Answers git HTTP requests for the bare repositories under `root` (`/owner/name.git/...`)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def repository(self, path: str) -> tuple[Path, str] | None:
        """(bare repository, the rest of the path) for a git URL path, or None when it is not one."""
        parts = path.lstrip("/").split("/")
        if len(parts) < 3 or not parts[1].endswith(".git"):
            return None
        repo = self.root / parts[0] / parts[1]
        rest = "/".join(parts[2:])
        if ".." in parts or not (repo / "HEAD").is_file():
            return None
        return repo, rest

    def smart(self, method: str, path: str, query: str, headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Run `git http-backend` (CGI) for one request; returns (status, headers, body)."""
        env = {
            **clean_git_environ(),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            # Partial clones and fetches by id, also from repositories served as they are.
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "uploadpack.allowFilter",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_CONFIG_KEY_1": "uploadpack.allowAnySHA1InWant",
            "GIT_CONFIG_VALUE_1": "true",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = headers["Git-Protocol"]
        if headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = headers["Content-Encoding"]
        result = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status, out = 200, {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                out[name.strip()] = value.strip()
        return status, out, payload

    def dumb(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """A static file of the repository (the dumb protocol), after `git update-server-info`."""
        found = self.repository(path)
        if found is None:
            return 404, {}, b"Not Found"
        repo, rest = found
        file = (repo / rest).resolve()
        if not str(file).startswith(str(repo.resolve()) + os.sep) or not file.is_file():
            return 404, {}, b"Not Found"
        return 200, {"Content-Type": "application/octet-stream"}, file.read_bytes()
