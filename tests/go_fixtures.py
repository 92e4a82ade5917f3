"""Generated Go sources for the record tests: one large file, many small edits to different functions."""

from __future__ import annotations

import random

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu amber basalt cobalt dune ember fjord glacier "
    "harbor iris jasper kelp lagoon meadow nectar orchid pebble quartz reef saffron thistle umber violet willow "
    "yarrow zephyr anchor beacon canyon drift estuary falcon garnet heron inlet jetty kestrel lantern marble"
).split()


def _ident(rng: random.Random, count: int = 2) -> str:
    words = rng.sample(WORDS, count)
    return words[0] + "".join(word.title() for word in words[1:])


def function_source(rng: random.Random, index: int) -> str:
    """A distinct function of about 20 lines: its own name, parameters, locals and calls."""
    name = f"{_ident(rng)}{index}"
    a, b, c, d = (_ident(rng) for _ in range(4))
    lines = [
        f"// {name} folds the {a} records into a {b} summary ({index}).",
        f"func {name}({a} []int, {b} map[string]int) (int, error) {{",
        f"\t{c} := 0",
        f"\tfor _, {d} := range {a} {{",
        f"\t\tif {d} < 0 {{",
        f'\t\t\treturn 0, fmt.Errorf("{name}: negative {d} %d", {d})',
        "\t\t}",
        f"\t\t{c} += {d} * {rng.randint(2, 97)}",
        "\t}",
        f'\tif v, ok := {b}["{_ident(rng)}"]; ok {{',
        f"\t\t{c} -= v",
        "\t}",
    ]
    for step in range(rng.randint(3, 6)):
        other = _ident(rng)
        lines.append(f'\t{other}{step} := strings.Repeat("{_ident(rng, 1)}", {c}%{rng.randint(3, 11)})')
        lines.append(f"\t{c} += len({other}{step})")
    lines += [f"\treturn {c}, nil", "}"]
    return "\n".join(lines) + "\n"


def large_file(seed: int = 7, functions: int = 140) -> tuple[str, list[str]]:
    """(source, function names) of one Go file of more than 3,000 lines."""
    rng = random.Random(seed)
    header = 'package ledger\n\nimport (\n\t"fmt"\n\t"strings"\n)\n'
    bodies = [function_source(rng, i) for i in range(functions)]
    names = [body.split("func ", 1)[1].split("(", 1)[0] for body in bodies]
    return header + "\n" + "\n".join(bodies), names


def edit_function(source: str, name: str, rng: random.Random) -> str:
    """The source with one small change inside function `name`: a new guard line after its opening brace."""
    opening = source.index(f"func {name}(")
    brace = source.index("{\n", opening) + 2
    guard = (
        f"\tif len({name[:4]}Limit) > {rng.randint(10, 999)} {{\n\t\treturn 0, errTooMany{rng.randint(1, 9)}\n\t}}\n"
    )
    return source[:brace] + guard + source[brace:]


def _git(work, *args: str, when: str = "2024-01-01T00:00:00+00:00") -> str:
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "GitHub",
        "GIT_COMMITTER_EMAIL": "noreply@github.com",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(work),
    }
    return subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True, text=True).stdout


def ledger_repository(path, prs: int = 22) -> dict:
    """A git repository with one Go file of 3,000+ lines and `prs` squash-merged PRs (#1..#prs), each
    guarding a different function; then a plain commit undoing PR #5 and PR #40, a backport of #5.

    Returns {"names": function name per PR number, "file": the path of the Go file}."""
    from pathlib import Path

    work = Path(path)
    work.mkdir(parents=True)
    source, names = large_file()
    _git(work, "init", "-q", "-b", "main")
    from corpus.sample.license_texts import mit

    (work / "ledger.go").write_text(source)
    (work / "LICENSE").write_text(mit(2024))
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "Initial ledger")
    rng = random.Random(11)
    chosen = {number: names[number * 5] for number in range(1, prs + 1)}
    edits = {}
    for number, name in chosen.items():
        before = (work / "ledger.go").read_text()
        after = edit_function(before, name, rng)
        edits[number] = (before, after)
        (work / "ledger.go").write_text(after)
        _git(
            work,
            "commit",
            "-q",
            "-am",
            f"Guard {name} against too many entries (#{number})",
            when=f"2024-02-{number:02d}T10:00:00+00:00",
        )
    # Undo #5 outside any PR (a direct push), then merge the same change again as a backport PR.
    current = (work / "ledger.go").read_text()
    before5, after5 = edits[5]
    undone = current.replace(_guard_of(before5, after5), "", 1)
    (work / "ledger.go").write_text(undone)
    _git(work, "commit", "-q", "-am", "Undo the guard for the release", when="2024-03-01T10:00:00+00:00")
    (work / "ledger.go").write_text(current)
    _git(
        work,
        "commit",
        "-q",
        "-am",
        f"[backport] Guard {chosen[5]} against too many entries (#40)",
        when="2024-03-02T10:00:00+00:00",
    )
    return {"names": chosen, "file": "ledger.go"}


def _guard_of(before: str, after: str) -> str:
    """The lines edit_function inserted (the text `after` has and `before` lacks, at their first difference)."""
    start = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    return after[start : start + len(after) - len(before)]
