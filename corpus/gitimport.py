"""Read merged pull requests from a local git clone: merge commits and squash merges on the default branch.

The clone is never read in place: `open_clone` copies it into a folder we own through the safe git
runner (corpus.gitcmd), and every command reads that copy."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from corpus import gitcmd
from corpus.licenses import detect_spdx, find_license_file
from corpus.records import FileRecord, PRRecord, RepoRecord

log = logging.getLogger(__name__)

MERGE_SUBJECT = re.compile(r"^Merge pull request #(\d+) from (\S+)")
SQUASH_SUBJECT = re.compile(r"^(.+?) \(#(\d+)\)$")
NOREPLY_EMAIL = re.compile(r"^(?:\d+\+)?([A-Za-z0-9-]+)@users\.noreply\.github\.com$")
_REMOTE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]+@)?[^/]+/(?P<path>.+)$")
_SCP_URL = re.compile(r"^(?:[^@/:]+@)?[^/:]{2,}:(?P<path>[^/].*)$")
_STATUS = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "added", "T": "modified"}
_BLOB_MODES = {"100644", "100755"}
_MAX_LICENSE_BYTES = 200_000
_LOG_FIELDS = 7


class GitImportError(RuntimeError):
    """The path is not a usable git repository, or git failed on it."""


@dataclass
class _Commit:
    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    authored: datetime | None
    committed: datetime | None
    message: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0].strip()


@dataclass
class _Change:
    """One entry of `git diff-tree --raw`."""

    status: str
    old_mode: str
    new_mode: str
    old_oid: str
    new_oid: str
    path: str
    previous_path: str = ""


@dataclass(frozen=True)
class Clone:
    """A repository to read: `source` is the operator's folder, `path` our private copy of it."""

    source: Path
    path: Path
    shallow: frozenset[str] = frozenset()


@contextmanager
def open_clone(path: Path | str, *, workdir: Path | str | None = None) -> Iterator[Clone]:
    """Check `path` is the top folder of a git repository and copy it safely; the copy goes away after."""
    source = repository_root(Path(path))
    try:
        with gitcmd.private_clone(source, workdir=workdir) as copy:
            shallow_file = copy / "shallow"
            shallow = frozenset(shallow_file.read_text().split()) if shallow_file.exists() else frozenset()
            yield Clone(source, copy, shallow)
    except gitcmd.GitError as error:
        raise GitImportError(f"cannot copy {source}: {error}") from None


def read_repository(path: Path, full_name: str | None = None, *, clone: Clone | None = None) -> RepoRecord:
    """Describe a local clone: its name, default branch, licence (from the LICENSE file at HEAD) and head."""
    if clone is None:
        with open_clone(path) as opened:
            return read_repository(path, full_name, clone=opened)
    work = clone.path
    branch, ref = _default_ref(work)
    head = _rev_parse(work, ref)
    license_spdx = _license_at(work, ref) if head else ""
    return RepoRecord(
        full_name=full_name or _full_name_from_remote(clone.source) or f"local/{clone.source.name}",
        source="git",
        license_spdx=license_spdx,
        default_branch=branch,
        provenance=str(clone.source),
        head_commit=head,
    )


def iter_pull_requests(
    path: Path,
    full_name: str,
    *,
    known_numbers: set[int] | frozenset[int] = frozenset(),
    since_commit: str | None = None,
    go_only: bool = True,
    max_file_bytes: int = 1_000_000,
    max_patch_bytes: int = 1_000_000,
    clone: Clone | None = None,
) -> Iterator[PRRecord]:
    """Yield merged pull requests found on the first-parent history of the default branch, oldest first.

    A true merge ("Merge pull request #N from owner/branch") is diffed against its first parent
    and takes its author and creation date from the branch; a squash merge ("Title (#N)") is one
    commit. Numbers in `known_numbers` are skipped, so a re-run yields only what is new. The
    oldest commit of a shallow clone is skipped: its parents are cut off, so its diff is unknown."""
    if clone is None:
        with open_clone(path) as opened:
            yield from iter_pull_requests(
                path,
                full_name,
                known_numbers=known_numbers,
                since_commit=since_commit,
                go_only=go_only,
                max_file_bytes=max_file_bytes,
                max_patch_bytes=max_patch_bytes,
                clone=opened,
            )
        return
    work = clone.path
    branch, ref = _default_ref(work)
    if not _rev_parse(work, ref):
        return  # an empty repository has no history
    revisions = [ref]
    if since_commit:
        since = _rev_parse(work, f"{since_commit}^{{commit}}")
        if not since:
            raise GitImportError(f"{since_commit!r} is not a commit of {clone.source}")
        revisions.append(f"^{since}")
    seen = set(known_numbers)
    empty_tree = _git(work, "hash-object", "-t", "tree", "--stdin", stdin=b"").decode().strip()
    origin = _origin_url(clone.source)
    # A clone of a GitHub repository: each PR links to its page there (numbers come from GitHub's merge subjects).
    web_url = github_web_url(origin) if origin else None
    for commit in _history(work, revisions, branch):
        if commit.sha in clone.shallow:
            continue
        number = _pull_number(commit)
        if number is None or number in seen:
            continue
        seen.add(number)
        try:
            record = _pull_request(
                work,
                full_name,
                commit,
                number,
                empty_tree,
                go_only=go_only,
                max_file_bytes=max_file_bytes,
                max_patch_bytes=max_patch_bytes,
                source=clone.source,
                web_url=web_url,
            )
        except (GitImportError, ValueError) as error:
            # Odd history (a missing object in a partial clone, a corrupt entry) must not stop an import.
            log.warning("skipping pull request #%s at %s: %s", number, commit.sha, error)
            continue
        if record is not None:
            yield record


def _pull_number(commit: _Commit) -> int | None:
    merge = MERGE_SUBJECT.match(commit.subject)
    if merge and len(commit.parents) >= 2:
        return int(merge.group(1))
    squash = SQUASH_SUBJECT.match(commit.subject)
    if squash and len(commit.parents) <= 1:
        return int(squash.group(2))
    return None


def _pull_request(
    path: Path,
    full_name: str,
    commit: _Commit,
    number: int,
    empty_tree: str,
    *,
    go_only: bool,
    max_file_bytes: int,
    max_patch_bytes: int,
    source: Path,
    web_url: str | None = None,
) -> PRRecord | None:
    base = commit.parents[0] if commit.parents else empty_tree
    changes = _changes(path, base, commit.sha)
    if go_only and not any(c.path.endswith(".go") or c.previous_path.endswith(".go") for c in changes):
        return None
    rest = commit.message.split("\n", 1)[1] if "\n" in commit.message else ""
    if len(commit.parents) >= 2:
        title, body = _split_title(rest)
        title = title or MERGE_SUBJECT.match(commit.subject).group(2)
        head = commit.parents[1]
        author, created_at = _branch_author(path, base, head, commit)
    else:
        title = SQUASH_SUBJECT.match(commit.subject).group(1)
        body = rest.strip()
        head = commit.sha
        author, created_at = _login(commit.author_name, commit.author_email), commit.authored
    return PRRecord(
        repo=full_name,
        number=number,
        title=title,
        body=body,
        author=author,
        created_at=created_at,
        merged_at=commit.committed,
        base_commit=commit.parents[0] if commit.parents else "",
        head_commit=head,
        merge_commit=commit.sha,
        files=_file_records(path, base, commit.sha, changes, max_file_bytes, max_patch_bytes),
        # The PR's page on GitHub when origin is there; otherwise where it was read (clone path and merge commit).
        source_url=f"{web_url}/pull/{number}" if web_url else f"file://{source}@{commit.sha}",
    )


def _split_title(text: str) -> tuple[str, str]:
    """A merge body is "Title" then, after a blank line, an optional description."""
    lines = text.strip().split("\n")
    title = lines[0].strip() if lines else ""
    return title, "\n".join(lines[1:]).strip()


def _branch_author(path: Path, base: str, head: str, merge: _Commit) -> tuple[str, datetime | None]:
    """The author of the branch tip and the earliest author date of the commits the merge brought in."""
    try:
        output = _git(path, "log", "--no-show-signature", "--format=%aI%x00%an%x00%ae%x00", head, f"^{base}")
    except GitImportError:
        # A shallow clone may lack the branch; the merge commit is the best we know.
        return _login(merge.author_name, merge.author_email), merge.authored
    entries = [line.split("\x00") for line in _text(output).strip().split("\n") if line.strip()]
    if not entries:
        return _login(merge.author_name, merge.author_email), merge.authored
    dates = [d for d in (_parse_date(e[0]) for e in entries) if d is not None]
    tip = entries[0]
    return _login(tip[1], tip[2] if len(tip) > 2 else ""), min(dates, default=merge.authored)


def _login(name: str, email: str) -> str:
    noreply = NOREPLY_EMAIL.match(email.strip())
    return noreply.group(1) if noreply else name.strip()


def _changes(
    path: Path, base: str, sha: str, *, renames: bool = True, pathspec: list[str] | None = None
) -> list[_Change]:
    # Rename detection reads blobs; without it only trees are read (all a partial clone holds).
    output = _git(
        path,
        *_limited(
            ["diff-tree", "-r", "-M" if renames else "--no-renames", "-z", "--raw", "--no-commit-id", base, sha],
            pathspec,
        ),
    )
    fields = output.split(b"\x00")
    changes = []
    index = 0
    while index < len(fields) and fields[index].startswith(b":"):
        old_mode, new_mode, old_oid, new_oid, status = _text(fields[index][1:]).split(" ")[:5]
        letter = status[:1]
        if letter in ("R", "C"):
            previous, current = _text(fields[index + 1]), _text(fields[index + 2])
            index += 3
        else:
            previous, current = "", _text(fields[index + 1])
            index += 2
        changes.append(_Change(letter, old_mode, new_mode, old_oid, new_oid, current, previous))
    return changes


def changed_files(
    path: Path,
    base: str,
    sha: str,
    *,
    max_file_bytes: int = 1_000_000,
    max_patch_bytes: int = 1_000_000,
    only_paths: set[str] | None = None,
) -> list[FileRecord]:
    """The files changed from commit `base` to `sha` with patches and before/after texts of Go files.

    The one reader of git: the local-clone import and the GitHub fetch through clones both use it.
    `only_paths` keeps the changes whose path (or previous path) is in it: git is asked about those
    paths only (and the deletions that may be their renames' sources), so a base that other merges
    moved past costs no blobs of the files they changed."""
    pathspec = None if only_paths is None else _pathspec(path, base, sha, only_paths)
    if pathspec == []:
        return []
    changes = _changes(path, base, sha, pathspec=pathspec)
    return _file_records(path, base, sha, changes, max_file_bytes, max_patch_bytes, only_paths, pathspec)


def changed_blob_ids(path: Path, base: str, sha: str, only_paths: set[str] | None = None) -> list[str]:
    """Ids of the blobs `changed_files` reads (both sides of every change): what a partial clone must hold."""
    pathspec = None if only_paths is None else _pathspec(path, base, sha, only_paths)
    if pathspec == []:
        return []
    return [
        oid
        for change in _changes(path, base, sha, renames=False, pathspec=pathspec)
        for oid, mode in ((change.old_oid, change.old_mode), (change.new_oid, change.new_mode))
        if mode in _BLOB_MODES and set(oid) != {"0"}
    ]


def _pathspec(path: Path, base: str, sha: str, only_paths: set[str]) -> list[str]:
    """The paths of `only_paths` that changed, plus deleted paths when one was added (a rename's source)."""
    raw = _changes(path, base, sha, renames=False)
    kept = [c.path for c in raw if c.path in only_paths]
    if any(c.status == "A" for c in raw if c.path in only_paths):
        kept += [c.path for c in raw if c.status == "D" and c.path not in only_paths]
    return sorted(set(kept))


def _file_records(
    path: Path,
    base: str,
    sha: str,
    changes: list[_Change],
    max_file_bytes: int,
    max_patch_bytes: int,
    only_paths: set[str] | None = None,
    pathspec: list[str] | None = None,
) -> list[FileRecord]:
    patches = _patches(path, base, sha, changes, pathspec)
    if only_paths is not None:
        kept = [
            (change, chunk)
            for change, chunk in zip(changes, patches, strict=True)
            if change.path in only_paths or change.previous_path in only_paths
        ]
        changes, patches = [c for c, _ in kept], [p for _, p in kept]
    wanted = [
        oid
        for change in changes
        if change.path.endswith(".go")
        for oid, mode in ((change.old_oid, change.old_mode), (change.new_oid, change.new_mode))
        if mode in _BLOB_MODES and set(oid) != {"0"}
    ]
    blobs = _read_blobs(path, wanted)
    records = []
    for change, chunk in zip(changes, patches, strict=True):
        records.append(_file_record(change, chunk, blobs, max_file_bytes, max_patch_bytes))
    return records


def _file_record(
    change: _Change, chunk: bytes, blobs: dict[str, bytes], max_file_bytes: int, max_patch_bytes: int
) -> FileRecord:
    is_binary = b"\nBinary files " in chunk or b"\nGIT binary patch" in chunk or chunk.startswith(b"Binary files ")
    hunks = _hunks(chunk)
    additions = sum(1 for line in hunks.split(b"\n") if line.startswith(b"+"))
    deletions = sum(1 for line in hunks.split(b"\n") if line.startswith(b"-"))
    record = FileRecord(
        path=change.path,
        status=_STATUS.get(change.status, "modified"),
        additions=additions,
        deletions=deletions,
        previous_path=change.previous_path,
        is_binary=is_binary,
    )
    if not is_binary:
        record.patch = _decode(hunks[:max_patch_bytes])
        if len(hunks) > max_patch_bytes:
            record.truncated_at = max_patch_bytes
    if change.path.endswith(".go") and not is_binary:
        for side, oid in (("before", change.old_oid), ("after", change.new_oid)):
            data = blobs.get(oid)
            if data is None:
                continue
            if b"\x00" in data[:8000]:  # git's own test for binary content
                record.is_binary = True
                record.before = record.after = None
                record.patch = ""
                break
            if len(data) > max_file_bytes:
                data = data[:max_file_bytes]
                record.truncated_at = max_file_bytes
            setattr(record, side, _decode(data))
    return record


def _hunks(chunk: bytes) -> bytes:
    """The part of one file's patch from its first hunk header on, as GitHub's `patch` field shows it."""
    if chunk.startswith(b"@@"):
        return chunk.rstrip(b"\n")
    start = chunk.find(b"\n@@")
    return chunk[start + 1 :].rstrip(b"\n") if start >= 0 else b""


def _limited(args: list[str], pathspec: list[str] | None) -> list[str]:
    """A git command limited to literal paths (None: the whole tree)."""
    return args if pathspec is None else ["--literal-pathspecs", *args, "--", *pathspec]


def _patches(path: Path, base: str, sha: str, changes: list[_Change], pathspec: list[str] | None = None) -> list[bytes]:
    """One patch chunk per change, in the order of `--raw`; git prints both in the same order."""
    output = _git(
        path,
        *_limited(
            [
                "diff-tree",
                "-r",
                "-M",
                "-p",
                "--no-commit-id",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                base,
                sha,
            ],
            pathspec,
        ),
    )
    chunks = [b"diff --git " + part for part in re.split(rb"(?m)^diff --git ", output)[1:]]
    if len(chunks) == len(changes):
        return chunks
    # Should never happen; ask for each file on its own rather than mismatch patches and files.
    result = []
    for change in changes:
        paths = [change.previous_path, change.path] if change.previous_path else [change.path]
        result.append(
            _git(
                path,
                "--literal-pathspecs",
                "diff-tree",
                "-r",
                "-M",
                "-p",
                "--no-commit-id",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                base,
                sha,
                "--",
                *paths,
            )
        )
    return result


def _read_blobs(path: Path, oids: list[str]) -> dict[str, bytes]:
    """Blob contents by id, read in one `git cat-file --batch`; missing objects are left out."""
    unique = list(dict.fromkeys(oids))
    if not unique:
        return {}
    output = _git(path, "cat-file", "--batch", stdin=("\n".join(unique) + "\n").encode())
    blobs: dict[str, bytes] = {}
    position = 0
    while position < len(output):
        line_end = output.index(b"\n", position)
        header = output[position:line_end].decode("ascii", errors="replace").split(" ")
        position = line_end + 1
        if len(header) != 3:  # "<oid> missing"
            continue
        size = int(header[2])
        blobs[header[0]] = output[position : position + size]
        position += size + 1
    return blobs


def _decode(data: bytes) -> str:
    # Not UTF-8 (Latin-1 comments, a cut multi-byte character): keep the text, mark bad bytes with U+FFFD.
    return data.decode("utf-8", errors="replace")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _history(path: Path, revisions: list[str], branch: str) -> list[_Commit]:
    """The default branch's first-parent history, oldest first, plus the lines that a merge *of* the default
    branch brought in ("Merge branch 'main' into topic" then a fast-forward, or a `git pull` merge): the PRs
    merged on the default branch meanwhile sit on that merge's second parent."""
    back_merge = re.compile(
        rf"^Merge (?:remote-tracking )?branch '(?:[^/']+/)?{re.escape(branch)}'(?: of \S+)?(?: into \S+)?$"
    )
    negative = [rev for rev in revisions if rev.startswith("^")]
    commits: dict[str, _Commit] = {}
    pending = [revisions]
    while pending:
        for commit in _first_parent_log(path, pending.pop()):
            if commit.sha in commits:
                continue
            commits[commit.sha] = commit
            if len(commit.parents) >= 2 and back_merge.match(commit.subject):
                pending.append([commit.parents[1], f"^{commit.parents[0]}", *negative])
    return sorted(commits.values(), key=lambda c: c.committed or datetime.min.replace(tzinfo=UTC))


def _first_parent_log(path: Path, revisions: list[str]) -> Iterator[_Commit]:
    # NUL separates fields; a commit message cannot contain NUL, so the split is unambiguous.
    output = _git(
        path,
        "log",
        "--first-parent",
        "--reverse",
        "--no-show-signature",
        "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%B%x00",
        *revisions,
        "--",
    )
    fields = output.split(b"\x00")
    for start in range(0, len(fields) - _LOG_FIELDS + 1, _LOG_FIELDS):
        sha, parents, name, email, authored, committed, message = (
            _text(f) for f in fields[start : start + _LOG_FIELDS]
        )
        yield _Commit(
            sha=sha.strip(),
            parents=parents.split(),
            author_name=name,
            author_email=email,
            authored=_parse_date(authored),
            committed=_parse_date(committed),
            message=message.strip(),
        )


def _parse_date(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.strip()).astimezone(UTC)
    except ValueError:
        return None


def _license_at(path: Path, ref: str) -> str:
    names = [_text(name) for name in _git(path, "ls-tree", "-z", "--name-only", ref).split(b"\x00") if name]
    name = find_license_file(names)
    if name is None:
        return ""
    data = _git(path, "cat-file", "-p", f"{ref}:{name}")
    return detect_spdx(_text(data[:_MAX_LICENSE_BYTES])) or "NOASSERTION"


def _origin_url(source: Path) -> str | None:
    """origin's URL, read from the source's config file as data (the copy's origin is the source itself)."""
    common = _maybe(source, "rev-parse", "--git-common-dir")
    if not common:
        return None
    return gitcmd.read_config_value((source / common).resolve() / "config", "remote.origin.url") or None


def _full_name_from_remote(source: Path) -> str | None:
    url = _origin_url(source)
    return full_name_from_url(url) if url else None


def github_web_url(url: str) -> str | None:
    """https://github.com/owner/name for a remote URL on github.com (https, ssh, scp-like); None for any other host."""
    if _REMOTE_URL.match(url):
        host = urlsplit(url).hostname or ""
    elif _SCP_URL.match(url):
        host = url.split(":", 1)[0].rsplit("@", 1)[-1]
    else:
        return None
    name = full_name_from_url(url)
    return f"https://github.com/{name}" if name and host.lower() in ("github.com", "www.github.com") else None


def full_name_from_url(url: str) -> str | None:
    """ "owner/name" from a network remote URL (https, ssh, scp-like); None for a local path."""
    match = _REMOTE_URL.match(url) or _SCP_URL.match(url)
    if not match:
        return None
    parts = [part for part in match.group("path").removesuffix("/").removesuffix(".git").split("/") if part]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _default_ref(path: Path) -> tuple[str, str]:
    """The default branch's name and the ref to walk: origin's HEAD when known (what was last fetched from
    origin, ahead of a local branch not yet pulled), else the checked-out branch."""
    remote_head = _maybe(path, "symbolic-ref", "-q", "refs/remotes/origin/HEAD")
    if remote_head:
        branch = remote_head.removeprefix("refs/remotes/origin/")
        if _rev_parse(path, remote_head):
            return branch, remote_head
        local = f"refs/heads/{branch}"
        if _rev_parse(path, local):
            return branch, local
    head = _maybe(path, "symbolic-ref", "-q", "HEAD")
    if head:
        return head.removeprefix("refs/heads/"), head
    return "HEAD", "HEAD"


def _rev_parse(path: Path, rev: str) -> str:
    return _maybe(path, "rev-parse", "-q", "--verify", rev)


def _maybe(path: Path, *args: str) -> str:
    try:
        return _text(_git(path, *args)).strip()
    except GitImportError:
        return ""


def inside_root(path: Path | str, root: Path | str) -> Path | None:
    """`path` with symbolic links resolved, when it is absolute and lies inside `root`; else None."""
    text = str(path).strip()
    if not text or "\x00" in text or not Path(text).is_absolute():
        return None
    try:
        resolved = Path(text).resolve()
        root = Path(root).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved if resolved != root and resolved.is_relative_to(root) else None


def importable(path: Path | str, root: Path | str) -> Path | None:
    """The repository's top folder when `path` is one inside `root`; None for anything else (missing,
    not a folder, not a repository, outside the root) so callers can answer one generic error."""
    resolved = inside_root(path, root)
    if resolved is None:
        return None
    try:
        top = repository_root(resolved)
        # A `.git` file (a linked worktree, a submodule) may point at a repository elsewhere: its git
        # folder must be inside the root too.
        common = _git(top, "rev-parse", "--git-common-dir").decode().strip()
    except (GitImportError, OSError):
        return None
    if inside_root(str((top / common).resolve()), root) is None and (top / common).resolve() != top:
        return None
    return top


def repository_root(path: Path) -> Path:
    """The clone's top folder; refuses a path that is not one (a folder inside another repository too)."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise GitImportError(f"{path} is not a git repository (no such folder)")
    try:
        bare = _text(_git(path, "rev-parse", "--is-bare-repository")).strip() == "true"
        top = path if bare else Path(_text(_git(path, "rev-parse", "--show-toplevel")).strip()).resolve()
    except GitImportError:
        raise GitImportError(f"{path} is not a git repository") from None
    if top != path:
        raise GitImportError(f"{path} is not a git repository (it is inside {top})")
    return path


def clean_git_environ() -> dict[str, str]:
    """The environment without any GIT_* variable (those set inside hooks would point git elsewhere)."""
    return {key: value for key, value in gitcmd.safe_environ().items() if not key.startswith("GIT_")}


def _git(path: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        return gitcmd.run(path, *args, stdin=stdin)
    except gitcmd.GitError as error:
        raise GitImportError(str(error)) from None
