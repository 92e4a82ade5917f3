"""The page scripts a rendered page loads, read from static/ so that tests can check what they do."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.templatetags.static import static


def page_script(page: str, name: str) -> str:
    """The text of static file `name` (`js/….js`), after checking that the page loads it."""
    assert f'<script src="{static(name)}"></script>' in page, f"the page does not load {name}"
    return Path(finders.find(name)).read_text(encoding="utf-8")
