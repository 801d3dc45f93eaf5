"""A WSGI application served on a free loopback port by waitress, in a thread of the engine's process, for as
long as a run lasts (the store's S3 endpoint, the package index proxy)."""

from __future__ import annotations

import threading
from typing import Any


class LoopbackServer:
    """``app`` on ``127.0.0.1``: started on entering, closed with every open connection on leaving."""

    def __init__(self, app: Any, ident: str, channel_class: type | None = None, threads: int = 4,
                 max_request_body_size: int = 1 << 30, port: int = 0):
        self.app, self.ident, self.channel_class, self.threads, self.port = app, ident, channel_class, threads, port
        self.max_request_body_size = max_request_body_size  # waitress answers 413 to a larger body
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LoopbackServer":
        import waitress

        self._server = waitress.create_server(self.app, host="127.0.0.1", port=self.port, threads=self.threads,
                                              ident=self.ident, clear_untrusted_proxy_headers=True,
                                              max_request_body_size=self.max_request_body_size)
        if self.channel_class is not None:
            self._server.channel_class = self.channel_class
        self._thread = threading.Thread(target=self._server.run, name=self.ident, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            server = self._server
            server.task_dispatcher.shutdown()

            def close_everything() -> None:
                # in the loop's own thread, so no channel is closed while the loop is using it: the clients'
                # kept-alive connections too (the loop runs while any is open), then the server, which empties
                # the loop's map, so it ends now, not at its 1 s poll
                for channel in list(server._map.values()):
                    if channel is not server and channel is not server.trigger:
                        channel.close()
                server.close()

            try:
                server.trigger.pull_trigger(close_everything)
            except OSError:  # an error on the listening socket closed the server and its trigger already
                close_everything()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"
