"""A real local HTTP server for the weights tests (downloads without the internet)."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest


@pytest.fixture()
def server(tmp_path):
    """Serves ``tmp_path/srv`` over HTTP on a free loopback port; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
