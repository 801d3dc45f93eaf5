"""The gunicorn worker of local endpoints: gunicorn's threaded worker, with a read timeout per client.

gunicorn's ``gthread`` worker waits for a new connection's first bytes without holding a thread, but once
they arrive it reads the rest of the request in a thread with no timeout, so a client that sends half its
headers or body and stalls holds that thread until it disconnects; a few of them starve every other
request, ``/ping`` included. SageMaker's own serving containers put nginx in front of their model
server for this reason. Here each client socket gets ``READ_TIMEOUT_SECONDS`` per read instead: a stalled
client loses its connection (closed at once, without the graceful linger gunicorn gives other failed
connections in its main loop) and its thread goes back to the pool. With ``THREADS`` threads per worker, a
handful of slow clients still leave threads for everyone else; a timed-out client is one line in the
server's log, not a traceback.
"""

from __future__ import annotations

import logging
import socket
import weakref

from gunicorn.workers.gthread import ThreadWorker

READ_TIMEOUT_SECONDS = 10.0
THREADS = 16  # per worker process: idle threads cost little, and slow clients then cannot take them all


_stalled: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # client sockets whose read timed out


class _ReadTimeoutSocket(socket.socket):
    """A client socket whose blocking mode has a timeout (gunicorn switches it to blocking to read)."""

    __slots__ = ()  # the layout of socket.socket, so that an accepted socket can take this class

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(READ_TIMEOUT_SECONDS)
        else:
            super().setblocking(False)

    def recv(self, *arguments: int) -> bytes:
        try:
            return super().recv(*arguments)
        except TimeoutError:
            _stalled.add(self)
            raise


class _StalledClients(logging.Filter):
    """gunicorn logs a socket timeout as an unexpected socket error with its traceback; this says what it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
            record.msg = "closed a connection whose client sent nothing for %.0f s"
            record.args = (READ_TIMEOUT_SECONDS,)
            record.exc_info, record.exc_text = None, None
        return True


class ReadTimeoutThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker with a per-read timeout on client sockets."""

    def init_process(self) -> None:
        self.log.error_log.addFilter(_StalledClients())
        super().init_process()

    def finish_request(self, conn, fs):  # type: ignore[no-untyped-def]
        # gunicorn closes a failed connection gracefully: in its main loop, it waits up to 2 s for the client to
        # close too. A stalled client never does, so a dozen of them would keep the loop (and every new
        # connection, /ping included) waiting for half a minute; a stalled client's connection is just closed.
        if conn.sock in _stalled:
            self.nr_conns -= 1
            conn.close()
            return
        super().finish_request(conn, fs)

    def handle(self, conn):  # type: ignore[no-untyped-def]
        if type(conn.sock) is socket.socket:
            conn.sock.__class__ = _ReadTimeoutSocket
            conn.sock.setblocking(True)
        return super().handle(conn)
