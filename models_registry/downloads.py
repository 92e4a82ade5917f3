"""Streamed file downloads with HTTP Range, so an interrupted download of a large model resumes."""

from __future__ import annotations

import re
from pathlib import Path

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date, quote_etag

CHUNK = 1 << 20
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _chunks(path: Path, start: int, length: int):
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` range as (start, end inclusive); None when absent or not satisfiable.

    Multi-range requests are answered with the whole file, which RFC 9110 allows."""
    match = RANGE_RE.match(header.strip())
    if not match or size == 0:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        return (-1, -1)
    return start, end


def ranged_file_response(request, path: Path, filename: str, etag: str = "") -> HttpResponse:
    stat = path.stat()
    size = stat.st_size
    etag = quote_etag(etag or f"{int(stat.st_mtime)}-{size}")
    header = request.headers.get("Range", "")
    span = parse_range(header, size) if header else None
    # If-Range: resume only when the file is the one the client started downloading.
    if span and request.headers.get("If-Range") and request.headers["If-Range"] != etag:
        span = None
    if span == (-1, -1):
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = span if span else (0, size - 1)
    length = max(0, end - start + 1)
    response = StreamingHttpResponse(
        _chunks(path, start, length), status=206 if span else 200, content_type="application/octet-stream"
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    if span:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
