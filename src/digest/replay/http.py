"""A small HTTP server on 127.0.0.1 in a background thread (for the replay servers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):  # the client gave up (timeout, killed): not our error
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1 (a free port by default); yields the port."""
    try:
        httpd = _Server(("127.0.0.1", port), handler)
    except OSError as exc:
        from digest.errors import ConfigError

        raise ConfigError(f"port {port} on 127.0.0.1 is taken ({exc.strerror}): choose another with --port / "
                          "--llm-port") from None  # fmt: skip
    httpd.daemon_threads = True
    httpd.request_queue_size = 128
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def send(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
) -> None:
    """Write one complete response (status, Content-Type, Content-Length, extra headers, body)."""
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)
