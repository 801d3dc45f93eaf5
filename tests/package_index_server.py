"""A package index on loopback for tests (PEP 503 pages and wheels built here), counting what it serves: no
test reaches the internet to install a package."""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path
from typing import Iterator


def wheel(folder: Path, name: str, version: str = "1.0", code: str = "VALUE = 42\n") -> Path:
    """A pure-Python wheel of module ``name`` (``code`` in its ``__init__``), as a build backend writes it."""
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": code.encode(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in {**files, f"{info}/RECORD": record.encode()}.items():
            archive.writestr(member, data)
    return path


class PackageIndex:
    """The index's URL (``.../simple``), its wheels, and how often each path was asked for."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.requests: collections.Counter[str] = collections.Counter()
        self.url = ""
        self.down = False  # True: every request fails, as an unreachable index does for a client
        self.authorizations: list[str | None] = []  # each request's Authorization header

    def add(self, name: str, version: str = "1.0", code: str = "VALUE = 42\n") -> Path:
        return wheel(self.folder, name, version, code)

    def page(self, project: str) -> str | None:
        links = [f'<a href="../../packages/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{p.name}</a>'
                 for p in sorted(self.folder.glob(f"{project.replace('-', '_')}-*.whl"))]
        return "<html><body>\n" + "<br/>\n".join(links) + "\n</body></html>\n" if links else None


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[PackageIndex]:
    """A PackageIndex of the wheels in ``folder`` on a free loopback port, for the block."""
    index = PackageIndex(folder)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            index.requests[self.path] += 1
            index.authorizations.append(self.headers.get("Authorization"))
            if index.down:
                self.close_connection = True
                self.connection.close()
                return
            parts = [p for p in self.path.split("/") if p]
            body, kind = None, "text/html"
            if len(parts) == 2 and parts[0] == "simple":
                page = index.page(parts[1])
                body = page.encode() if page is not None else None
            elif len(parts) == 2 and parts[0] == "packages" and (folder / parts[1]).is_file():
                body, kind = (folder / parts[1]).read_bytes(), "application/octet-stream"
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
