"""The studio's door: loopback only, a per-start token for every request, and the token again on every action.

The token arrives once in the URL the studio prints (``?token=...``, as Jupyter's does); the first page
sets it as a cookie (HttpOnly, SameSite=Strict) and sends the browser on to the same address without it.
Every later request must carry the cookie (or an ``Authorization: token ...`` header); an action (a POST)
must also carry it in the ``X-Studio-Token`` header, which a page of another site cannot set, so that a
page elsewhere cannot act through the cookie. A ``Host`` header that is not this machine's loopback name
is refused, so that a DNS name rebound to 127.0.0.1 cannot reach the studio either. The body of an action is
read here, up to ``MAX_BODY_BYTES`` (a larger one is a 413 before the rest of it is read), and handed on whole.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse

COOKIE = "studio_token"
HEADER = "x-studio-token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY_BYTES = 6 << 20  # InvokeEndpoint's payload limit: the largest body an action has a reason to carry

Scope = dict[str, Any]
App = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class TokenGate:
    """ASGI middleware refusing what lacks the token, or comes for another host."""

    def __init__(self, app: App, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").rsplit(":", 1)[0] if not headers.get("host", "").startswith("[") else \
            headers["host"].split("]")[0] + "]"
        if host not in LOOPBACK_HOSTS:
            await PlainTextResponse(f"the studio answers on loopback only, not for host {host!r}", 403)(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self._matches(query.get("token")) and scope["method"] == "GET":
            rest = urlencode([(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1")) if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        presented = _cookie(headers.get("cookie", ""), COOKIE) or headers.get("authorization", "").removeprefix("token ")
        if not self._matches(presented):
            await PlainTextResponse("the studio needs its token: open the URL it printed when it started "
                                    "(it ends in ?token=...)", 403)(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and not self._matches(headers.get(HEADER)):
            await PlainTextResponse("an action needs the token in the X-Studio-Token header", 403)(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            body = await _capped_body(headers.get("content-length", ""), receive)
            if body is None:
                await JSONResponse({"error": f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB, the most "
                                             "an action of the studio takes"}, 413)(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())


async def _capped_body(length: str, receive: Any) -> bytes | None:
    """The whole request body, or None once it is told or found to be larger than MAX_BODY_BYTES."""
    if length.isascii() and length.isdigit() and (len(length) > 19 or int(length) > MAX_BODY_BYTES):
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the app gets what came
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[Any]]:
    """A ``receive`` that gives the body read already, then what the client sends next (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Any:
        return pending.pop() if pending else await receive()

    return replayed


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
