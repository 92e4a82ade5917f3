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
