"""The telemetry source is said, never guessed: ``--telemetry FILE|URL`` is a telemetry JSON
file (on disk or over HTTP), ``--prometheus URL`` a Prometheus server. Each refuses the
other kind with a clear message naming the right flag. Real HTTP servers on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelpin.cli import main
from tests.fleetkit import NOW

from . import faults


class _Server:
    """Answers every GET with one scripted (status, headers, body); POST: 501 like a
    static file server (``http.server``)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                 drip: bool = False) -> None:
        self.gets: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.gets.append(self.path)
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if drip:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(0.5)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served() -> Iterator[list[_Server]]:
    servers: list[_Server] = []
    yield servers
    for s in servers:
        s.stop()


def _serve(served: list[_Server], status: int, body: bytes, **kw: Any) -> _Server:
    s = _Server(status, body, **kw)
    served.append(s)
    return s


def _telemetry_bytes() -> bytes:
    return json.dumps({"version": 1, "generated_at": NOW, "records": faults.records()}).encode()


def _bot(repo: Path, *source: str) -> int:
    return main(["bot", "--repo", str(repo), *source, "--now", NOW, "--dry-run",
                 "--timeout", "2"])


def test_a_telemetry_json_served_over_http_is_read_as_the_file(
    tmp_path: Path, served: list[_Server], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    file = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, "--telemetry", str(file)) == 0
    from_file = capsys.readouterr().out
    server = _serve(served, 200, _telemetry_bytes())
    assert _bot(repo, "--telemetry", f"{server.url}/telemetry.json") == 0
    from_url = capsys.readouterr().out
    assert server.gets == ["/telemetry.json"]
    assert from_url == from_file
    assert from_url.count("ROLLBACK") == len(faults.TENANTS)


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (302, b"", {"Location": "/query"}, "answered HTTP 302 (a redirect to /query)"),
        (200, b"<!doctype html><title>Prometheus Time Series Collection</title>",
         {"Content-Type": "text/html; charset=utf-8"}, "answered an HTML page"),
        (200, b'{"status":"error","errorType":"bad_data","error":"unknown"}', {},
         "answered like a Prometheus API (`status`: 'error')"),
    ],
    ids=["prometheus-root-redirect", "prometheus-ui-page", "prometheus-api-answer"],
)
def test_a_prometheus_server_given_as_telemetry_is_a_usage_error(
    tmp_path: Path, served: list[_Server], capsys: pytest.CaptureFixture[str],
    status: int, body: bytes, headers: dict[str, str], message: str,
) -> None:
    repo = faults.repo(tmp_path)
    server = _serve(served, status, body, headers=headers)
    assert _bot(repo, "--telemetry", server.url) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "a Prometheus server? use --prometheus URL" in err
    assert "Traceback" not in err


def test_a_json_file_server_given_as_prometheus_says_to_use_telemetry(
    tmp_path: Path, served: list[_Server], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path, prometheus=True)
    server = _serve(served, 200, _telemetry_bytes())  # POST answers 501
    assert _bot(repo, "--prometheus", f"{server.url}/telemetry.json") == 1
    out = capsys.readouterr().out
    assert "is not a Prometheus HTTP API (POST /api/v1/query answered HTTP 501)" in out
    assert "a telemetry JSON file served over HTTP? use --telemetry URL" in out
    assert "ROLLBACK" not in out and "ADVANCE" not in out  # no data: everything holds


def test_a_path_given_as_prometheus_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    file = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, "--prometheus", str(file)) == 2
    err = capsys.readouterr().err
    assert "not an http(s) URL of a Prometheus server" in err
    assert "use --telemetry FILE|URL" in err


@pytest.mark.parametrize("args", [[], ["--telemetry", "x.json", "--prometheus", "http://x"]],
                         ids=["neither", "both"])
def test_exactly_one_source(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            args: list[str]) -> None:
    repo = faults.repo(tmp_path)
    assert _bot(repo, *args) == 2
    assert "give exactly one telemetry source" in capsys.readouterr().err


def test_a_telemetry_url_is_bounded_by_size_and_time(
    tmp_path: Path, served: list[_Server], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    big = _serve(served, 200, b'{"version": 1, "records": [' + b" " * 2_000_000 + b"]}")
    code = main(["bot", "--repo", str(repo), "--telemetry", big.url, "--now", NOW,
                 "--dry-run", "--max-telemetry-mb", "1"])
    assert code == 1
    assert "answer over the 1048576-byte cap" in capsys.readouterr().err
    slow = _serve(served, 200, _telemetry_bytes(), drip=True)
    started = time.monotonic()
    assert _bot(repo, "--telemetry", slow.url) == 1
    assert time.monotonic() - started < 10
    assert "timed out after" in capsys.readouterr().err


def test_an_http_error_on_the_telemetry_url_is_reported(
    tmp_path: Path, served: list[_Server], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    server = _serve(served, 404, b'{"message": "Not Found"}')
    assert _bot(repo, "--telemetry", server.url + "/gone.json") == 1
    assert "answered HTTP 404, not a telemetry JSON file" in capsys.readouterr().err
