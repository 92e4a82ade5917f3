"""Licence files: find one in a tree, name its SPDX id from the text, and check it against an allow-list."""

from __future__ import annotations

import re

NOASSERTION = "NOASSERTION"

# The seed's families: MIT, Apache, GPL, BSD. GitHub spells some ids with -only/-or-later.
DEFAULT_ALLOWED_LICENSES: frozenset[str] = frozenset(
    {"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "GPL-2.0", "GPL-3.0"}
)

# Checked first because their texts mention the GNU licences (MPL's "Secondary License").
_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Apache-2.0", ("apache license", "version 2 0")),
    ("MPL-2.0", ("mozilla public license", "2 0")),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("MIT", ("permission is hereby granted free of charge to any person obtaining a copy",)),
)

# The GNU texts quote each other (the GPL mentions the Affero and Lesser GPL), so the
# licence is the title that comes first, with the version that follows it.
_GNU_TITLE = re.compile(r"gnu (affero |lesser |library )?general public license")
_GNU_VERSION = re.compile(r"version (\d)(?: ([01])\b)?")
_GNU_FAMILY = {"affero ": "AGPL", "lesser ": "LGPL", "library ": "LGPL", "": "GPL"}

_BSD_GRANT = "redistribution and use in source and binary forms with or without modification are permitted"
_ISC_GRANT = "permission to use copy modify and or distribute this software for any purpose with or without fee"
_ISC_GRANT_OLD = "permission to use copy modify and distribute this software for any purpose with or without fee"

# Names a licence file is given, most specific first; matched case-insensitively.
LICENSE_FILE_NAMES: tuple[str, ...] = (
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
    "LICENSE.rst",
    "LICENCE",
    "LICENCE.md",
    "LICENCE.txt",
    "COPYING",
    "COPYING.md",
    "COPYING.txt",
    "UNLICENSE",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    "LICENSE-BSD",
    "MIT-LICENSE",
    "MIT-LICENSE.txt",
)


def _normalise(text: str) -> str:
    """Lower-case words separated by single spaces, so layout, quotes and markup do not matter."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def detect_spdx(license_text: str) -> str:
    """The SPDX id of a licence text; "NOASSERTION" when unrecognised, "" when the text is empty."""
    if not license_text or not license_text.strip():
        return ""
    text = _normalise(license_text)
    for spdx, phrases in _PHRASES:
        if all(phrase in text for phrase in phrases):
            return spdx
    title = _GNU_TITLE.search(text)
    if title:
        version = _GNU_VERSION.search(text, title.end(), title.end() + 120)
        if version:
            family = _GNU_FAMILY[title.group(1) or ""]
            return f"{family}-{version.group(1)}.{version.group(2) or '0'}"
    if _BSD_GRANT in text:
        if "all advertising materials" in text:
            return "BSD-4-Clause"
        if "endorse or promote products derived" in text:
            return "BSD-3-Clause"
        return "BSD-2-Clause"
    if _ISC_GRANT in text or _ISC_GRANT_OLD in text:
        # 0BSD is the ISC grant without the condition to keep the notice.
        return "ISC" if "provided that the above copyright notice" in text else "0BSD"
    return NOASSERTION


def _base_id(spdx: str) -> str:
    base = spdx.strip().lower()
    for suffix in ("-only", "-or-later", "+"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def license_allowed(spdx: str, allowed: frozenset[str] | set[str] = DEFAULT_ALLOWED_LICENSES) -> bool:
    """Whether an SPDX id is on the allow-list; "GPL-3.0-only" counts as "GPL-3.0". Unknown is never allowed."""
    if not spdx or spdx == NOASSERTION:
        return False
    return _base_id(spdx) in {_base_id(item) for item in allowed}


def find_license_file(names: list[str]) -> str | None:
    """The licence file among top-level file names, by the usual naming conventions; None if there is none."""
    by_lower: dict[str, str] = {}
    for name in names:
        if "/" not in name:
            by_lower.setdefault(name.lower(), name)
    for candidate in LICENSE_FILE_NAMES:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    # Less common spellings such as "License.markdown" or "LICENSE-GPL".
    for lower, name in sorted(by_lower.items()):
        if lower.startswith(("license", "licence", "copying")):
            return name
    return None
