"""Run a long-lived HTTP server in the foreground until Ctrl-C, SIGTERM or its own shutdown."""

from __future__ import annotations

import signal
import threading
from socketserver import BaseServer


def serve_until_stopped(server: BaseServer) -> None:
    """Serve; SIGTERM and Ctrl-C stop cleanly, and the listening socket is always closed."""

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on this (the serving) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
