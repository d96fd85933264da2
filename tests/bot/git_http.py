"""A real git server over HTTP on loopback that demands Basic auth, as GitHub does.

``git http-backend`` (git's own smart-HTTP CGI program) serves the bare repositories
under ``root``; a small ``http.server`` runs it as CGI for every request that carries
``Authorization: Basic base64(x-access-token:TOKEN)`` with a token ``accepts`` takes, and
answers ``401`` with ``WWW-Authenticate: Basic`` otherwise (no body that could echo it).
Every request is recorded (method, path, the token it carried, the answer), and the
receive-pack POST of a push can be held (``hold``) so that a test can look at the
processes of a push in flight.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str
    token: str | None
    """The password of a Basic ``x-access-token`` header (None: no or another header)."""
    status: int


@dataclass
class GitHttpServer:
    root: Path
    accepts: Callable[[str], bool]
    seen: list[Seen] = field(default_factory=list)
    hold: threading.Event | None = None
    """Set: the receive-pack POST waits for it (after setting ``held``)."""
    held: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GitHttpServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                owner._serve(self)

            def do_POST(self) -> None:
                owner._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- one request -------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        token = _basic_token(req.headers.get("Authorization"))
        body = _read_body(req)
        if token is None or not self.accepts(token):
            self.seen.append(Seen(req.command, url.path, token, 401))
            req.send_response(401)
            req.send_header("WWW-Authenticate", 'Basic realm="modelpin test git"')
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if url.path.endswith("/git-receive-pack") and self.hold is not None:
            self.held.set()
            self.hold.wait(30)
        env = {
            "PATH": os.environ.get("PATH", ""), "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": url.path, "QUERY_STRING": url.query,
            "REQUEST_METHOD": req.command, "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": req.headers.get("Content-Type", ""),
            "HTTP_CONTENT_ENCODING": req.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": req.headers.get("Git-Protocol", ""),
        }
        proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                              capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.seen.append(Seen(req.command, url.path, token, status))
        req.send_response(status)
        for name, value in headers:
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)


def _basic_token(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return password if user == "x-access-token" else None


def _read_body(req: BaseHTTPRequestHandler) -> bytes:
    if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                req.rfile.readline()
                return b"".join(chunks)
            chunks.append(req.rfile.read(size))
            req.rfile.readline()
    length = int(req.headers.get("Content-Length") or 0)
    return req.rfile.read(length) if length else b""
