"""A project's page of a simple package index (PEP 503, HTML), read into its files and written again with
every file's link pointing at the local proxy."""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from typing import Any

SHA256 = re.compile(r"^[0-9a-f]{64}$")
PROJECT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # a normalized project name (PEP 503)


@dataclass(frozen=True)
class IndexFile:
    """One file a project's page lists: where it is upstream, its hashes and pip's attributes."""

    filename: str
    url: str  # without the fragment, and without user and password
    sha256: str | None
    fragment: str  # the link's fragment as upstream gave it (``sha256=...``, ``md5=...``), kept for pip
    requires_python: str | None = None
    yanked: str | None = None  # the reason ("" for none given), or None when not yanked

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def normalized(name: str) -> str:
    """A project name as PEP 503 normalizes it."""
    return re.sub(r"[-_.]+", "-", name).lower()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


def files_of(page: str, page_url: str) -> list[IndexFile]:
    """The files a project page lists, their URLs made absolute against ``page_url`` (its user and password
    left out)."""
    parser = _Links()
    parser.feed(page)
    found = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urllib.parse.urldefrag(urllib.parse.urljoin(page_url, href))
        parts = urllib.parse.urlsplit(url)
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        filename = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1]) or text
        digest = dict(p.split("=", 1) for p in fragment.split("&") if "=" in p).get("sha256", "").lower()
        found.append(IndexFile(filename, url, digest if SHA256.match(digest) else None, fragment,
                               attrs.get("data-requires-python"),
                               None if "data-yanked" not in attrs else (attrs.get("data-yanked") or "")))
    return found


def page_of(project: str, files: list[IndexFile], link: Any) -> str:
    """The project's page for pip, each file's link made by ``link(file)``."""
    lines = [f"<!DOCTYPE html><html><head><title>Links for {html.escape(project)}</title></head><body>",
             f"<h1>Links for {html.escape(project)}</h1>"]
    for file in files:
        attrs = f' href="{html.escape(link(file) + ("#" + file.fragment if file.fragment else ""))}"'
        if file.requires_python:
            attrs += f' data-requires-python="{html.escape(file.requires_python)}"'
        if file.yanked is not None:
            attrs += f' data-yanked="{html.escape(file.yanked)}"'
        lines.append(f"<a{attrs}>{html.escape(file.filename)}</a><br/>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"
