"""The package index jobs' ``pip`` reaches: a proxy on loopback in front of the user's indexes, for one run.

Each upstream index is ``/<n>/`` here (``PIP_INDEX_URL`` and ``PIP_EXTRA_INDEX_URL`` in every job). A
project's page is read from upstream each time (and kept, so that a run without the index still finds
what it installed before); every file it lists is linked to ``/files/<sha256>/<name>``. A file is
downloaded once, checked against the hash the index gave, and kept in the cache by its hash: the next job,
or run, gets it from there. Jobs never write the cache: what they receive is what the index published.
Jobs with network isolation cannot reach loopback, so their ``pip install`` fails, as on SageMaker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.atomic import write_text
from pipelines.local.loopback_server import LoopbackServer
from pipelines.local.package_index.pages import PROJECT, SHA256, IndexFile, files_of, normalized, page_of
from pipelines.local.package_index.settings import IndexSettings, shown

CHUNK = 1 << 20
DOWNLOADS = "pip-downloads"  # in the environments cache: project pages and files, by hash
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Upstream:
    """Reads the user's indexes with the user's certificates, proxy and credentials (never given to jobs)."""

    def __init__(self, settings: IndexSettings):
        self.settings = settings
        # user and password per host, from the index URLs that carry them (files on the same host need them too)
        self._logins = {p.hostname: (urllib.parse.unquote(p.username or ""), urllib.parse.unquote(p.password or ""))
                        for p in map(urllib.parse.urlsplit, settings.index_urls) if p.username}

    def open(self, url: str, accept: str = "*/*") -> Any:
        """The response to GET ``url`` (urllib.error.HTTPError for an error status, OSError if unreachable)."""
        parts = urllib.parse.urlsplit(url)
        plain = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        request = urllib.request.Request(plain, headers={"Accept": accept, "User-Agent": "sagemaker-pipelines-local"})
        login = self._logins.get(parts.hostname)
        if login is not None and parts.scheme in ("https", "http"):
            token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=self.settings.cert)
        if self.settings.trusted(url):
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        proxies = {"http": self.settings.proxy, "https": self.settings.proxy} if self.settings.proxy else {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                             urllib.request.HTTPSHandler(context=context))
        return opener.open(request, timeout=self.settings.timeout)


class IndexApp:
    """The WSGI application: project pages and files, from upstream or from the cache."""

    def __init__(self, settings: IndexSettings, cache: Path):
        self.settings, self.upstream = settings, Upstream(settings)
        self.pages, self.files = cache / "pages", cache / "files"
        self._known: dict[str, IndexFile] = {}  # hash or token -> the upstream file, for this run
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", "only GET and HEAD are served")
        if len(parts) == 3 and parts[0] == "files":
            return self._file(parts[1], start_response)
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) < len(self.settings.index_urls):
            return self._page(int(parts[0]), normalized(parts[1]), start_response)
        return _answer(start_response, "404 Not Found", "no such page")

    # -- project pages -----------------------------------------------------------------------

    def _page(self, index: int, project: str, start_response: StartResponse) -> Iterator[bytes]:
        if not PROJECT.match(project):
            return _answer(start_response, "404 Not Found", "not a project name")
        upstream = f"{self.settings.index_urls[index]}/{project}/"
        kept = self.pages / f"{hashlib.sha256(shown(upstream).encode()).hexdigest()}.json"
        try:
            with self.upstream.open(upstream, "text/html") as response:
                files = files_of(response.read().decode("utf-8", errors="replace"), response.geturl())
            self.pages.mkdir(parents=True, exist_ok=True)
            write_text(kept, json.dumps([f.as_json() for f in files]))
        except urllib.error.HTTPError as exc:
            return _answer(start_response, f"{exc.code} Upstream", f"{shown(upstream)}: {exc.reason}")
        except (OSError, ValueError) as exc:  # unreachable: what an earlier run read, if any
            try:
                files = [IndexFile(**entry) for entry in json.loads(kept.read_text())]
            except (OSError, ValueError, TypeError):
                return _answer(start_response, "502 Bad Gateway", f"{shown(upstream)} cannot be reached ({exc})")
        with self._lock:
            links = {}
            for file in files:
                key = file.sha256 or secrets.token_hex(16)
                self._known[key] = file
                links[file] = key
        page = page_of(project, files, lambda file: f"/files/{links[file]}/{urllib.parse.quote(file.filename)}")
        return _answer(start_response, "200 OK", page, "text/html; charset=utf-8")

    # -- files -------------------------------------------------------------------------------

    def _file(self, key: str, start_response: StartResponse) -> Iterator[bytes]:
        cached = self.files / key[:2] / key if SHA256.match(key) else None
        if cached is not None and cached.is_file():
            return _stream_file(cached, start_response)
        with self._lock:
            file = self._known.get(key)
        if file is None:
            return _answer(start_response, "404 Not Found", "no such file: read its project's page first")
        try:
            response = self.upstream.open(file.url)
        except urllib.error.HTTPError as exc:
            return _answer(start_response, f"{exc.code} Upstream", f"{shown(file.url)}: {exc.reason}")
        except OSError as exc:
            return _answer(start_response, "502 Bad Gateway", f"{shown(file.url)} cannot be reached ({exc})")
        headers = [("Content-Type", "application/octet-stream")]
        if response.headers.get("Content-Length"):
            headers.append(("Content-Length", response.headers["Content-Length"]))
        start_response("200 OK", headers)
        return _passing_through(response, cached)


def _passing_through(response: Any, cached: Path | None) -> Iterator[bytes]:
    """The upstream file's bytes as they arrive, kept in the cache once complete and matching its hash."""
    if cached is None:
        with response:
            while chunk := response.read(CHUNK):
                yield chunk
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".tmp-{secrets.token_hex(6)}-{cached.name}")
    digest = hashlib.sha256()
    try:
        with response, open(partial, "xb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                yield chunk
        if digest.hexdigest() == cached.name:  # else pip, which checks the hash too, refuses it
            os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)


def _stream_file(path: Path, start_response: StartResponse) -> Iterator[bytes]:
    handle = open(path, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.fstat(handle.fileno()).st_size))])

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    return chunks()


def _answer(start_response: StartResponse, status: str, body: str, kind: str = "text/plain; charset=utf-8"
            ) -> Iterator[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data)))])
    return iter([data])


class PackageIndexProxy(LoopbackServer):
    """The package index proxy of one local run, its downloads kept in the environments ``cache``."""

    def __init__(self, settings: IndexSettings, cache: Path):
        super().__init__(IndexApp(settings, cache / DOWNLOADS), "LocalPackageIndex")
        self.settings = settings

    def job_environment(self) -> dict[str, str]:
        """What a job's pip needs to install through this proxy (and not to ask anything else)."""
        urls = [f"{self.url}/{n}/" for n in range(len(self.settings.index_urls))]
        found = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore", "PIP_NO_INPUT": "1"}
        if not urls:
            return {**found, "PIP_NO_INDEX": "1"}
        return {**found, "PIP_INDEX_URL": urls[0], **({"PIP_EXTRA_INDEX_URL": " ".join(urls[1:])} if urls[1:] else {})}
