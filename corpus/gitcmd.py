"""The one way HRGC runs git: nothing a repository carries (its config, hooks, attributes) may run code.

A repository someone else wrote is never read in place. `private_clone` copies it with
`git clone --no-local --mirror` into a folder the application owns, whose config is git's default,
and every later command reads only that copy. Every command, the clone included, runs with:

- no system or global config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`) and none of the
  caller's `GIT_*` variables (they could point git at another repository or inject config);
- hooks, fsmonitor, signature display, signature programs, pagers, credential helpers, external
  diff and text conversion switched off on the command line, which outranks any repository config;
- no lazy fetch of missing objects (`GIT_NO_LAZY_FETCH`, git >= 2.45; older gits are still held to the
  allowed transports by `GIT_ALLOW_PROTOCOL`), no terminal prompts, no optional locks;
- only the transports the caller allows (local files by default) — and never a
  `safe.directory` override: a repository owned by another user is refused, as git intends.

Domain code: no Django here (h13's GitHub clones use the same runner with `protocols=("https",)`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class GitError(RuntimeError):
    """git could not be run, or it failed."""


# Config given on every command line. Command-line config outranks the repository's own, so a
# hostile .git/config cannot turn any of these back on.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.askPass", ""),
    ("core.sshCommand", "false"),
    ("core.gitProxy", ""),
    ("core.alternateRefsCommand", ""),
    ("core.attributesFile", os.devnull),
    ("core.quotepath", "off"),
    ("credential.helper", ""),
    ("log.showSignature", "false"),
    ("gpg.program", "false"),
    ("gpg.openpgp.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("diff.external", ""),
    ("uploadpack.packObjectsHook", ""),
    ("submodule.recurse", "false"),
    ("protocol.allow", "never"),
)

TIMEOUT = 3600.0


def safe_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment without any `GIT_*` variable, plus the switches that neutralize config."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.pop("SSH_ASKPASS", None)
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "false",
            "GIT_NO_LAZY_FETCH": "1",  # a partial clone must not reach for the network (git >= 2.45)
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


def command(cwd: Path | str | None, args: Sequence[str], *, protocols: Iterable[str] = ("file",)) -> list[str]:
    """The argv for `git args…` in `cwd` with the safe config (no repository discovery outside `cwd`)."""
    argv = ["git"]
    if cwd is not None:
        argv += ["-C", str(cwd)]
    for key, value in SAFE_CONFIG:
        argv += ["-c", f"{key}={value}"]
    for protocol in protocols:
        argv += ["-c", f"protocol.{protocol}.allow=always"]
    argv += list(args)
    for arg in argv:
        if "safe.directory" in arg:
            raise GitError("refusing to override safe.directory")
    return argv


def run(
    cwd: Path | str | None,
    *args: str,
    stdin: bytes | None = None,
    protocols: Iterable[str] = ("file",),
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> bytes:
    """Run git and return its stdout; GitError with git's message when it fails."""
    protocols = tuple(protocols)
    argv = command(cwd, args, protocols=protocols)
    # Also in the environment: it reaches the git processes our config does not (the upload-pack a local
    # clone starts in the source, and any fetch that one starts), where it outranks their config.
    allow = {"GIT_ALLOW_PROTOCOL": ":".join(protocols) or "none"}
    try:
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            env=safe_environ({**allow, **(env or {})}),
            check=False,
            timeout=timeout,
            cwd=None if cwd is not None else "/",
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"cannot run git: {error}") from error
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed: {message}")
    return result.stdout


def _symrefs(source: str) -> dict[str, str]:
    """Symbolic refs the source advertises (HEAD, refs/remotes/origin/HEAD): name -> target."""
    output = run(None, "-c", "protocol.version=2", "ls-remote", "--symref", "--", source).decode("utf-8", "replace")
    found = {}
    for line in output.splitlines():
        if line.startswith("ref: ") and "\t" in line:
            target, name = line[5:].split("\t", 1)
            found[name.strip()] = target.strip()
    return found


@contextmanager
def private_clone(source: Path | str, *, workdir: Path | str | None = None) -> Iterator[Path]:
    """A bare mirror of a local repository in a fresh folder we own; removed when the block ends.

    `--no-local` makes git copy objects through its pack protocol instead of hard-linking or copying
    the source's files, and the copy's config is git's default: nothing from the source's config,
    hooks or info/ folder comes along. Its HEAD and `refs/remotes/origin/HEAD` point where the
    source's do. A shallow source gives a shallow copy (its `shallow` file lists the cut)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="hrgc-git-", dir=workdir))
    try:
        clone = folder / "repo.git"
        source = str(source)
        run(None, "clone", "--quiet", "--no-local", "--mirror", "--no-hardlinks", "--", source, str(clone))
        for name, target in _symrefs(source).items():
            if name in ("HEAD", "refs/remotes/origin/HEAD") and target.startswith("refs/"):
                try:
                    run(clone, "symbolic-ref", name, target)
                except GitError:
                    pass  # a target the source does not have: keep what the clone chose
        yield clone
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_config_value(config_file: Path, key: str) -> str | None:
    """One value of a config file, read as data (no includes, no repository involved)."""
    try:
        return run(None, "config", "--no-includes", "--file", str(config_file), "--get", key).decode().strip() or None
    except GitError:
        return None
