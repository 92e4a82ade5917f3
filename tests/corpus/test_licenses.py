"""Licence detection from the text of a LICENSE file, the allow-list, and finding the file."""

from pathlib import Path

import pytest

from corpus.licenses import (
    DEFAULT_ALLOWED_LICENSES,
    detect_spdx,
    find_license_file,
    license_allowed,
)
from corpus.sample.license_texts import APACHE_2_0, bsd_3_clause, mit

BSD_2 = """Copyright (c) 2020, Someone
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES ARE DISCLAIMED.
"""

ISC = """ISC License

Copyright (c) 2021, Someone

Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES.
"""

UNLICENSE = """This is free and unencumbered software released into the public domain.

Anyone is free to copy, modify, publish, use, compile, sell, or
distribute this software, either in source code form or as a compiled
binary, for any purpose, commercial or non-commercial, and by any means.
"""

GPL_3 = """                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
 Everyone is permitted to copy and distribute verbatim copies
 of this license document, but changing it is not allowed.

  13. Use with the GNU Affero General Public License.
"""

GPL_2 = """                    GNU GENERAL PUBLIC LICENSE
                       Version 2, June 1991

 Copyright (C) 1989, 1991 Free Software Foundation, Inc.
"""

LGPL_3 = """                   GNU LESSER GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

  This version of the GNU Lesser General Public License incorporates
the terms and conditions of version 3 of the GNU General Public
License, supplemented by the additional permissions listed below.
"""

MPL_2 = """Mozilla Public License Version 2.0
==================================

1. Definitions
1.13. "Secondary License"
    means either the GNU General Public License, Version 2.0, the GNU Lesser
    General Public License, Version 2.1, the GNU Affero General Public
    License, Version 3.0, or any later versions of those licenses.
"""


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        (mit(2023), "MIT"),
        (APACHE_2_0, "Apache-2.0"),
        (bsd_3_clause(2023), "BSD-3-Clause"),
        (BSD_2, "BSD-2-Clause"),
        (GPL_2, "GPL-2.0"),
        (GPL_3, "GPL-3.0"),
        (LGPL_3, "LGPL-3.0"),
        (MPL_2, "MPL-2.0"),
        (ISC, "ISC"),
        (UNLICENSE, "Unlicense"),
        ("# MIT License\n\n" + mit(2020).split("\n", 3)[3].replace("\n", " "), "MIT"),
    ],
)
def test_detect_spdx_names_each_licence(text, spdx):
    assert detect_spdx(text) == spdx


def test_detect_spdx_for_unknown_and_empty_text():
    assert detect_spdx("All rights reserved. You may not copy this software.") == "NOASSERTION"
    assert detect_spdx("") == ""
    assert detect_spdx("  \n\t") == ""


DEBIAN_TEXTS = {
    "GPL-2": "GPL-2.0",
    "GPL-3": "GPL-3.0",
    "LGPL-2.1": "LGPL-2.1",
    "LGPL-3": "LGPL-3.0",
    "MPL-2.0": "MPL-2.0",
    "Apache-2.0": "Apache-2.0",
    "BSD": "BSD-3-Clause",
}


@pytest.mark.parametrize(("name", "spdx"), sorted(DEBIAN_TEXTS.items()))
def test_detect_spdx_on_full_licence_texts(name, spdx):
    # The full texts quote each other (GPL-3 mentions the Affero GPL); Debian ships them.
    path = Path("/usr/share/common-licenses") / name
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    assert detect_spdx(path.read_text(encoding="utf-8")) == spdx


def test_license_allowed_uses_the_allow_list():
    assert license_allowed("MIT")
    assert license_allowed("Apache-2.0", DEFAULT_ALLOWED_LICENSES)
    assert license_allowed("GPL-3.0-only")
    assert license_allowed("gpl-2.0-or-later")
    assert not license_allowed("MPL-2.0")
    assert not license_allowed("NOASSERTION")
    assert not license_allowed("")
    assert license_allowed("MPL-2.0", {"MPL-2.0"})
    assert not license_allowed("MIT", {"Apache-2.0"})


def test_find_license_file_prefers_the_usual_names():
    assert find_license_file(["README.md", "LICENSE.md", "go.mod"]) == "LICENSE.md"
    assert find_license_file(["COPYING", "LICENSE"]) == "LICENSE"
    assert find_license_file(["copying"]) == "copying"
    assert find_license_file(["License.markdown"]) == "License.markdown"
    assert find_license_file(["docs/LICENSE", "main.go"]) is None
    assert find_license_file([]) is None
