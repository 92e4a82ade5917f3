"""Template helpers shared by every page."""

import json

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_link(context, key: str, label: str):
    """A column header that sorts by `key`, flipping direction when it already does."""
    current = context.get("sort", "")
    base = context.get("query_without_sort", "")
    new = f"-{key}" if current == key else key
    arrow = " ▲" if current == key else (" ▼" if current == f"-{key}" else "")
    href = f"?{base}&sort={new}" if base else f"?sort={new}"
    return format_html('<a href="{}">{}{}</a>', href, label, arrow)


@register.filter
def duration(value) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if hasattr(value, "total_seconds") else value)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


@register.filter
def percent(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


@register.filter
def as_json(value) -> str:
    """Readable JSON for a stored result (a dict shown to people, not Python's repr)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def http_url(value) -> str:
    """The URL when it is http(s), else "" — for links built from data other servers sent us
    (a `javascript:` or `data:` URL must never become a clickable link)."""
    from urllib.parse import urlsplit

    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() in ("http", "https") and parts.netloc and not any(c in text for c in "\r\n\t"):
        return text
    return ""
