"""Clones of GitHub repositories in the data directory: the code of merged pull requests at no API cost.

A clone is bare and partial (`--filter=blob:none`) where the server allows it, full otherwise;
later runs `git fetch` it. The blobs a page of pull requests needs are fetched in one batch.
Git runs through the safe runner (corpus.gitcmd: no hooks, no system or global config, no
credential helper, no lazy fetch) with only the http(s) transports and no redirects; the token goes to the git host only, as an HTTP header scoped to
that host's URL (in the environment, not on the command line)."""

from __future__ import annotations

import base64
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from corpus import gitcmd

DEFAULT_GIT_URL = "https://github.com"
GIT_TIMEOUT = 1800
BLOB_BATCH = 2000


class GitFailed(RuntimeError):
    """Git could not clone, fetch or read (after its retries)."""


@dataclass
class Clone:
    """One repository's clone: where it is, whether it is partial, and what the last update moved."""

    path: Path
    url: str
    partial: bool
    created: bool = False
    bytes_received: int = 0  # growth of the object store in this run (clone, fetch, blob batches)
    git_commands: int = 0

    @property
    def disk_bytes(self) -> int:
        return disk_usage(self.path)


def git_url_for(api_url: str, configured: str = "") -> str:
    """The git host for an API: the configured one, else github.com for api.github.com, HOST for an
    Enterprise https://HOST/api/v3, else the API URL itself (the GitHub-shaped server serves git there)."""
    if configured:
        return configured.rstrip("/")
    parts = urlsplit(api_url.rstrip("/"))
    if parts.hostname == "api.github.com":
        return DEFAULT_GIT_URL
    path = parts.path.rstrip("/")
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def clone_path(root: Path, full_name: str) -> Path:
    owner, name = full_name.split("/", 1)
    return Path(root) / owner / f"{name}.git"


def clone_url(git_base: str, full_name: str) -> str:
    return f"{(git_base or DEFAULT_GIT_URL).rstrip('/')}/{full_name}.git"


def disk_usage(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


class GitRunner:
    """Runs git for one git host: the one place the fetch starts git (network and reads alike)."""

    def __init__(
        self,
        git_base: str = DEFAULT_GIT_URL,
        token: str | None = None,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float, str], None] | None = None,
    ):
        self.git_base = (git_base or DEFAULT_GIT_URL).rstrip("/")
        scheme = urlsplit(self.git_base).scheme
        if scheme not in ("https", "http"):
            raise ValueError(f"GITHUB_GIT_URL must be an http(s) URL, not {git_base!r}")
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._on_wait = on_wait
        self.commands = 0

    @property
    def protocols(self) -> tuple[str, ...]:
        return ("https", "http") if self.git_base.startswith("http://") else ("https",)

    def env(self) -> dict[str, str]:
        """Config for the network commands, in the environment (never on the command line, where ps shows it)."""
        config = {"http.followRedirects": "false", "fetch.negotiationAlgorithm": "noop"}
        if self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            # Scoped to the git host's URL: git sends it to nothing else.
            config[f"http.{self.git_base}/.extraHeader"] = f"Authorization: Basic {basic}"
        env = {}
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env["GIT_CONFIG_COUNT"] = str(len(config))
        return env

    def run(self, *args: str, cwd: Path | None = None, stdin: bytes | None = None, network: bool = False) -> bytes:
        """One git command through the safe runner; network commands are retried with back-off (a 502, a cut pack)."""
        attempt = 0
        while True:
            self.commands += 1
            try:
                return gitcmd.run(
                    cwd, *args, stdin=stdin, protocols=self.protocols, env=self.env(), timeout=GIT_TIMEOUT
                )
            except gitcmd.GitError as exc:
                message = _without_token(_last_lines(str(exc).encode()), self.token)
            if not network or attempt >= self.retries or not transient(message):
                raise GitFailed(message)
            attempt += 1
            wait = random.uniform(0, self.backoff * 2**attempt)
            if self._on_wait is not None:
                self._on_wait(wait, f"{message[:200]}: retry {attempt}/{self.retries} in {wait:.1f} s")
            self._sleep(wait)


def ensure_clone(runner: GitRunner, root: Path, full_name: str, *, partial: bool = True) -> Clone:
    """Clone `full_name` into `root` (partial where the server allows it), or fetch an existing clone."""
    path = clone_path(root, full_name)
    url = clone_url(runner.git_base, full_name)
    before = runner.commands
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        size = disk_usage(path)
        runner.run("fetch", "--prune", "--no-tags", "origin", "+refs/heads/*:refs/heads/*", cwd=path, network=True)
        clone = Clone(path, url, _is_partial(runner, path))
        clone.bytes_received = max(0, disk_usage(path) - size)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a worker killed mid-clone left this
        staging = path.parent / f".{path.name}.partial-{os.getpid()}"
        args = ["clone", "--bare", "--no-tags", "--quiet"]
        if partial:
            args.append("--filter=blob:none")
        try:
            for attempt in range(runner.retries + 1):
                shutil.rmtree(staging, ignore_errors=True)
                try:
                    runner.run(*args, "--", url, str(staging), network=False)
                    break
                except GitFailed as exc:
                    if attempt >= runner.retries or not transient(str(exc)):
                        raise
                    wait = random.uniform(0, runner.backoff * 2 ** (attempt + 1))
                    if runner._on_wait is not None:
                        runner._on_wait(wait, f"{exc}: clone retry {attempt + 1}/{runner.retries} in {wait:.1f} s")
                    runner._sleep(wait)
            os.replace(staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        clone = Clone(path, url, _is_partial(runner, path), created=True)
        clone.bytes_received = disk_usage(path)
    clone.git_commands = runner.commands - before
    return clone


def drop_clone(root: Path, full_name: str) -> int:
    """Delete a repository's clone; returns the bytes it held (0 when there was none)."""
    path = clone_path(root, full_name)
    if not path.exists():
        return 0
    size = disk_usage(path)
    shutil.rmtree(path)
    return size


def _is_partial(runner: GitRunner, path: Path) -> bool:
    """A partial clone holds promisor packs; a server that ignored the filter (dumb HTTP) sent a full one."""
    return any((path / "objects" / "pack").glob("*.promisor"))


def present_objects(runner: GitRunner, clone: Clone) -> set[str]:
    """Ids of the commits and blobs the clone holds (reading the packs; never fetching)."""
    output = runner.run(
        "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectname)", "--unordered", cwd=clone.path
    )
    present = set()
    for line in output.split(b"\n"):
        kind, _, oid = line.partition(b" ")
        if kind in (b"blob", b"commit"):
            present.add(oid.decode())
    return present


def fetch_objects(runner: GitRunner, clone: Clone, oids: Iterable[str], present: set[str] | None = None) -> int:
    """Fetch the objects a partial clone lacks, in batches (one request each); returns how many were asked for."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return 0
    if present is None:
        present = present_objects(runner, clone)
    missing = [oid for oid in wanted if oid not in present]
    if not missing:
        return 0
    size = disk_usage(clone.path / "objects")
    for start in range(0, len(missing), BLOB_BATCH):
        batch = missing[start : start + BLOB_BATCH]
        runner.run(
            "fetch",
            "origin",
            "--no-tags",
            "--no-write-fetch-head",
            "--recurse-submodules=no",
            *(["--filter=blob:none"] if clone.partial else []),
            "--stdin",
            cwd=clone.path,
            stdin=("\n".join(batch) + "\n").encode(),
            network=True,
        )
        present.update(batch)
    clone.bytes_received += max(0, disk_usage(clone.path / "objects") - size)
    return len(missing)


# Failures worth another try: the server's 5xx, a pack cut off, a dropped or refused connection.
_TRANSIENT = (
    "returned error: 5",
    "early EOF",
    "RPC failed",
    "unexpected disconnect",
    "transfer closed",
    "Connection refused",
    "Connection reset",
    "timed out",
    "Could not resolve host",
    "the remote end hung up",
    "cannot run git",
)


def transient(message: str) -> bool:
    """True for a git failure another try may cure; a 401/403/404 or a bad repository is final."""
    return any(marker in message for marker in _TRANSIENT)


def _last_lines(stderr: bytes, count: int = 3) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no message"


def _without_token(message: str, token: str | None) -> str:
    return message.replace(token, "***") if token else message
