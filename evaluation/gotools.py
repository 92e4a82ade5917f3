"""The Go toolchain's verdicts on generated code: does gofmt leave it unchanged, does `go vet` accept it
in its repository. Where a tool or the repository cannot give a verdict, the answer is None (absent),
never a guess. Domain code: no Django here."""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path, PurePosixPath

from corpus import gitcmd, golang
from corpus.code_section import files_of
from evaluation.splice import merge_into_package

GOFMT_TIMEOUT_S = 30
VET_TIMEOUT_S = 600  # the first vet in a process also compiles what the package imports from the standard library
MAX_OUTPUT_CHARS = 4000
MAX_MODULE_BYTES = 512 << 20  # the module's files are read into memory and written out for every task
# A declaration fragment (what a CODE section holds) is formatted as the body of this file.
FRAGMENT_PACKAGE = "package fragment\n\n"
_PACKAGE_CLAUSE = re.compile(r"^package\s+(\w+)", re.MULTILINE)
_REGULAR_FILE_MODES = {"100644", "100755"}


def _tool(name: str) -> str | None:
    # Debian's golang-go links /usr/bin/go; the versioned folder serves a PATH that lacks /usr/bin.
    return shutil.which(name) or next(
        (str(path) for path in sorted(Path("/usr/lib").glob(f"go*/bin/{name}")) if path.is_file()), None
    )


def gofmt_accepts(code: str) -> bool | None:
    """True when gofmt leaves the code unchanged (what `gofmt -l` checks), False when it would change it
    or cannot parse it; None when gofmt is not installed. The code of several files (each after its
    `//hrgc:file` line, as `code_of` writes it) is accepted when every file is.

    A fragment without a package clause (a CODE section holds changed declarations, not files) is
    checked as the body of a file starting `package fragment` and a blank line; gofmt would otherwise
    read it as a declaration list, which it formats the same way. Blank code is False: nothing written.
    A missing final line break counts as unformatted, as in a file."""
    gofmt = _tool("gofmt")
    if gofmt is None:
        return None
    files = files_of(code)
    if len(files) > 1 or files[0][0]:
        # Several files (`code_of`'s `//hrgc:file` lines): each must be formatted.
        verdicts = [_gofmt_accepts_file(gofmt, text) for _, text in files]
        return None if None in verdicts else all(verdicts)
    return _gofmt_accepts_file(gofmt, code)


def _gofmt_accepts_file(gofmt: str, code: str) -> bool | None:
    if not code.strip():
        return False
    source = code if _PACKAGE_CLAUSE.search(code) else FRAGMENT_PACKAGE + code
    try:
        result = subprocess.run(
            [gofmt], input=source.encode("utf-8", "surrogateescape"), capture_output=True, timeout=GOFMT_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError, UnicodeError):
        return None
    return result.returncode == 0 and result.stdout == source.encode("utf-8", "surrogateescape")


# --- go vet in the repository -------------------------------------------------------------------


@functools.cache
def _shared_cache() -> Path:
    """One build cache per process: vetting many tasks compiles the standard library once, not per task."""
    folder = Path(tempfile.mkdtemp(prefix="hrgc-gocache-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def go_environ(home: Path, cache: Path, *, vendored: bool = False) -> dict[str, str]:
    """Go with the network off and nothing of the caller's Go setup: no module downloads (GOPROXY=off,
    no checksum database), go.mod may be completed from what is at hand (-mod=mod; -mod=vendor for a
    module that vendors its dependencies, as Go itself would choose), the installed toolchain only, a
    fresh GOPATH and module cache in `home`."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "GOPATH": str(home / "gopath"),
        "GOMODCACHE": str(home / "gopath" / "pkg" / "mod"),
        "GOCACHE": str(cache),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=vendor" if vendored else "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOENV": "off",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
        "GOTELEMETRY": "off",
        "LC_ALL": "C",
    }


def _tree(git_dir: Path, commit: str) -> list[tuple[str, str, int]]:
    """(blob id, path, size) of every regular file of the commit (links and submodules are left out)."""
    listing = gitcmd.run(git_dir, "ls-tree", "-r", "-l", "-z", "--full-tree", f"{commit}^{{tree}}")
    entries = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, blob, size = meta.decode().split()
        if kind == "blob" and mode in _REGULAR_FILE_MODES:
            entries.append((blob, path.decode("utf-8", "surrogateescape"), int(size)))
    return entries


def _module_root(paths: set[str], path: str) -> str | None:
    """The folder of the nearest go.mod above `path` ("" for the repository root), None when there is none."""
    folder = PurePosixPath(path).parent
    while True:
        prefix = "" if str(folder) == "." else f"{folder}/"
        if f"{prefix}go.mod" in paths:
            return prefix
        if str(folder) == ".":
            return None
        folder = folder.parent


def _check_out(git_dir: Path, entries: list[tuple[str, str, int]], root: str, into: Path) -> None:
    """Write the module's files (those under `root`) into `into`, read as data through the safe git runner."""
    wanted = [(blob, path) for blob, path, _ in entries if path.startswith(root)]
    if not wanted:
        return
    output = gitcmd.run(git_dir, "cat-file", "--batch", stdin="".join(f"{blob}\n" for blob, _ in wanted).encode())
    offset = 0
    for _, path in wanted:
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].split()[2])
        data = output[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1
        parts = PurePosixPath(path).parts
        if ".." in parts or ".git" in parts:
            continue  # never written outside the folder, never a git directory
        target = into.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _vet(go: str, module_dir: Path, packages: list[str], env: dict[str, str], home: Path) -> tuple[bool, str]:
    try:
        result = subprocess.run(
            [go, "vet", *packages], cwd=module_dir, env=env, capture_output=True, timeout=VET_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False, f"go vet ran past {VET_TIMEOUT_S} s"
    output = (result.stdout + result.stderr).decode("utf-8", "replace").replace(f"{module_dir}/", "")
    output = output.replace(str(home), "$TMP").strip()
    return result.returncode == 0, output[:MAX_OUTPUT_CHARS]


_base_verdicts: dict[tuple[str, str, str, tuple[str, ...]], tuple[bool, str]] = {}  # base vet verdicts, per process
_base_lock = threading.Lock()


def _put_file(folder: Path, name: str, code: str) -> str | None:
    """Merge one generated file's code into `folder/name` (`merge_into_package`); why not, or None."""
    target = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        # A file the base lacks: the package clause the code gives, else its folder's.
        named = _PACKAGE_CLAUSE.search(code)
        target.write_text(f"package {named[1] if named else _package_name(folder)}\n")
    sources = {
        file.name: file.read_bytes().decode("utf-8", "surrogateescape")
        for file in sorted(folder.glob("*.go"))
        if file.name == name or not file.name.endswith("_test.go")  # tests are their own files' business
    }
    unparsed = [n for n, text in sources.items() if text and not golang.outline(text).parsed]
    if unparsed:
        return f"{', '.join(unparsed)} does not parse at the base commit"
    for changed, text in merge_into_package(sources, name, code).items():
        (folder / changed).write_bytes(text.encode("utf-8", "surrogateescape"))
    return None


def _has_go_files(paths: set[str], folder: str) -> bool:
    return any(p.startswith(folder) and p.endswith(".go") and "/" not in p[len(folder) :] for p in paths)


def _package_of(relative: str) -> str:
    parent = str(PurePosixPath(relative).parent)
    return "." if parent == "." else f"./{parent}"


def typecheck(
    git_dir: Path | str, base_commit: str, path: str, code: str, *, cache_dir: Path | None = None
) -> tuple[bool | None, str]:
    """`go vet` on the packages the generated code changes, at `base_commit` with the generated
    declarations put in (`merge_into_package`). `code` is one file's code for `path`, or the code of
    several files as `corpus.code_section.code_of` writes it (each after a `//hrgc:file PATH` line,
    paths from the repository root); a file the base lacks is created in its folder's package.

    Returns (True, "") when vet accepts it, (False, vet's output or the parse errors) when not, and
    (None, why) when no verdict can be had: Go not installed, the commit unreadable, no go.mod, or the
    unchanged base itself failing vet (modules not at hand offline, a newer Go, broken code...). The
    base's verdict is remembered per process. `cache_dir` is the Go build cache (default: one temporary
    folder per process, so the standard library is compiled once)."""
    go = _tool("go")
    if go is None:
        return None, "go is not installed"
    files = [(file_path or path, text) for file_path, text in files_of(code)]
    git_dir = Path(git_dir)
    try:
        entries = _tree(git_dir, base_commit)
    except gitcmd.GitError as error:
        return None, f"the base commit cannot be read: {error}"
    paths = {p for _, p, _ in entries}
    roots = {_module_root(paths, file_path) for file_path, _ in files}
    if None in roots:
        return None, f"no go.mod above {' or '.join(p for p, _ in files)} at {base_commit[:12]}"
    if len(roots) > 1:
        return None, "the change spans several Go modules"
    root = roots.pop()
    relatives = [(file_path[len(root) :], text) for file_path, text in files]
    packages = sorted({_package_of(relative) for relative, _ in relatives})
    existing = [p for p in packages if _has_go_files(paths, root + ("" if p == "." else f"{p[2:]}/"))]
    if not existing:
        return None, "the change only adds packages: there is no base package to vet"
    size = sum(n for _, p, n in entries if p.startswith(root))
    if size > MAX_MODULE_BYTES:
        return None, f"the module is too large to check out ({size >> 20} MiB)"
    with tempfile.TemporaryDirectory(prefix="hrgc-vet-") as temp:
        home = Path(temp)
        module_dir = home / "src"
        module_dir.mkdir()
        vendored = f"{root}vendor/modules.txt" in paths
        env = go_environ(home, Path(cache_dir) if cache_dir else _shared_cache(), vendored=vendored)
        try:
            _check_out(git_dir, entries, root, module_dir)
        except (gitcmd.GitError, ValueError, OSError) as error:
            return None, f"the base commit cannot be checked out: {error}"
        key = (str(git_dir.resolve()), base_commit, root, tuple(existing))
        with _base_lock:
            verdict = _base_verdicts.get(key)
        if verdict is None:
            verdict = _vet(go, module_dir, existing, env, home)
            with _base_lock:
                _base_verdicts[key] = verdict
        if not verdict[0]:
            wanted, installed = _go_directive(module_dir / "go.mod"), _toolchain_version(go)
            if wanted and installed and wanted > installed:
                return None, (
                    f"the module asks for Go {wanted[0]}.{wanted[1]} and Go {installed[0]}.{installed[1]} is "
                    f"installed, which cannot vet it: install Go {wanted[0]}.{wanted[1]} or newer\n{verdict[1]}"
                )
            return None, f"the base commit does not pass go vet, so the change cannot be judged:\n{verdict[1]}"
        errors = []
        for relative, text in relatives:
            problems = golang.attempt_errors(text) or (
                [] if golang.outline(text).parsed else ["tree-sitter rejects it"]
            )
            errors += [f"{root}{relative}: {problem}" for problem in problems]
        if errors:
            return False, "the generated code does not parse: " + "; ".join(errors)
        for relative, text in relatives:
            target = module_dir / relative
            why = _put_file(target.parent, target.name, text)
            if why:
                return None, why
        ok, output = _vet(go, module_dir, packages, env, home)
        if not ok:
            wanted, installed = _go_directive(module_dir / "go.mod"), _toolchain_version(go)
            if wanted and installed and wanted > installed:
                # Still a verdict: the base passed under this Go, and counting only passes would bias the
                # share; the note says an API or syntax newer than the installed Go may be the cause.
                output += f"\n(note: the module asks for Go {wanted[0]}.{wanted[1]}; Go {installed[0]}.{installed[1]} is installed)"
        return ok, "" if ok else output


_GO_DIRECTIVE = re.compile(r"^go\s+(\d+)\.(\d+)", re.MULTILINE)


def _go_directive(go_mod: Path) -> tuple[int, int] | None:
    """The Go version a go.mod asks for (`go 1.21` -> (1, 21))."""
    match = _GO_DIRECTIVE.search(go_mod.read_text("utf-8", "replace")) if go_mod.is_file() else None
    return (int(match[1]), int(match[2])) if match else None


@functools.cache
def _toolchain_version(go: str) -> tuple[int, int] | None:
    try:
        output = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", output.strip())
    return (int(match[1]), int(match[2])) if match else None


def _package_name(folder: Path) -> str:
    """The package the folder's Go files declare ("main" when it has none)."""
    for file in sorted(folder.glob("*.go")) if folder.is_dir() else []:
        match = _PACKAGE_CLAUSE.search(file.read_text("utf-8", "replace"))
        if match and not match[1].endswith("_test"):
            return match[1]
    return "main"
