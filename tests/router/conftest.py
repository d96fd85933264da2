"""Shared fixtures for the router tests: real keys, real Redis, a real HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.router import Router, trusted_keys


@pytest.fixture(scope="session")
def signing_keys() -> list[Ed25519PrivateKey]:
    return [signing.generate_private_key() for _ in range(3)]


@pytest.fixture
def key(signing_keys: list[Ed25519PrivateKey]) -> Ed25519PrivateKey:
    return signing_keys[0]


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    return tmp_path / "routing-table.dsse.json"


@pytest.fixture
def make_router(tmp_path: Path, key: Ed25519PrivateKey, table_file: Path) -> Any:
    """``make_router(**kwargs)``: a Router on ``table_file`` trusting ``key``, with a
    state file in tmp and its own metrics registry."""

    def make(**kwargs: Any) -> Router:
        kwargs.setdefault("state_file", tmp_path / "floor.json")
        kwargs.setdefault("registry", CollectorRegistry())
        trusted = kwargs.pop("trusted", trusted_keys([key.public_key()]))
        source = kwargs.pop("source", table_file)
        return Router(source, trusted, **kwargs)

    return make


# --- a real Redis server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not on PATH: the router tests need a real Redis "
            "(Debian/Ubuntu: apt-get install -y redis-server)",
            pytrace=False,
        )
    data = tmp_path / "redis"
    data.mkdir()
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                time.sleep(0.02)
        client.close()
        if proc.poll() is None:
            server = RedisServer(port, proc)
            try:
                yield server
            finally:
                server.kill()
            return
    pytest.fail("redis-server did not start (5 attempts)", pytrace=False)


# --- a real HTTP server --------------------------------------------------------------------


class TableServer:
    """Serves ``self.body`` at /table with a strong ETag and If-None-Match support."""

    def __init__(self) -> None:
        self.body = b""
        self.requests = 0
        self.not_modified = 0
        self.status = 200
        self.lie_about_length = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests += 1
                body = outer.body
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if outer.status != 200:
                    self.send_response(outer.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    outer.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                if outer.lie_about_length:  # stream without announcing the size
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 65536):
                        chunk = body[i : i + 65536]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that stops reading past its size cap resets the connection

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/table"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def table_server() -> Iterator[TableServer]:
    server = TableServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def router_at_5(make_router: Any, key: Ed25519PrivateKey, table_file: Path) -> Any:
    """A router that accepted a table of serial 5 (the attack suites start here)."""
    from tests.router.tables import envelope, payload, write_atomically

    write_atomically(table_file, envelope(payload(5), [key]))
    router = make_router()
    assert router.refresh().outcome == "accepted"
    return router
