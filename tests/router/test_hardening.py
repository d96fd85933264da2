"""Attacks that got through before issue 12, python-tuf style: each bad input is refused
with a ``TableRejected`` (never an exception out of ``refresh``), the router keeps
serving the last good table, and nothing bad is installed or persisted."""

from __future__ import annotations

import base64
import gc
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import signing
from modelpin.router import (
    InMemorySessionStore,
    MalformedTableError,
    RedisSessionStore,
    Router,
    SourceError,
    TrustedTableSet,
    UnsignedTableError,
    trusted_keys,
)
from modelpin.router.payload import MAX_SERIAL
from modelpin.router.sources import HttpSource
from tests.router.conftest import RedisServer, TableServer
from tests.router.tables import canonical, envelope, payload, push, serving, write_atomically


def _raw_envelope(body: bytes, sigs: list[dict[str, str]]) -> bytes:
    return json.dumps({"payload": base64.b64encode(body).decode(),
                       "payloadType": signing.PAYLOAD_TYPE, "signatures": sigs}).encode()


def _sig(key: Ed25519PrivateKey, body: bytes, keyid: str | None = None) -> dict[str, str]:
    sig = key.sign(signing.pae(signing.PAYLOAD_TYPE, body))
    return {"keyid": signing.keyid_of(key.public_key()) if keyid is None else keyid,
            "sig": base64.b64encode(sig).decode()}


# --- refresh() never raises; start() always leaves a poller ---------------------------------


def _deep(n: int) -> bytes:
    return b'{"payload":' + b"[" * n + b"]" * n + b"}"


def test_an_envelope_nested_100000_deep_is_rejected_not_raised(
    router_at_5: Router, table_file: Path
) -> None:
    result = push(table_file, _deep(100_000), router_at_5)
    assert result.outcome == "rejected"
    assert isinstance(result.error, MalformedTableError)
    assert "nested too deeply" in str(result.error)
    assert serving(router_at_5) == 5


def test_start_with_a_bad_first_table_still_polls_and_loads_a_good_one_later(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    write_atomically(table_file, _deep(100_000))
    router = make_router(poll_interval=0.05, max_backoff=0.1)
    try:
        assert router.start().outcome == "rejected"
        write_atomically(table_file, envelope(payload(6), [key]))
        deadline = time.monotonic() + 10
        while router.table is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert serving(router) == 6
    finally:
        router.stop()


def test_an_unexpected_fault_in_a_source_is_reported_not_raised(make_router: Any) -> None:
    class Broken:
        def fetch(self) -> Any:
            raise RecursionError("a bug somewhere")

        def commit(self, token: object) -> None:
            pass

        def describe(self) -> str:
            return "broken"

    router = make_router(source=Broken())
    result = router.refresh()
    assert result.outcome == "error"
    assert router.status().last_error_kind == "internal"


# --- key ids are bound to keys; the threshold counts distinct keys ----------------------------


def test_one_key_under_two_ids_cannot_meet_threshold_2(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    pub = key.public_key()
    with pytest.raises(ValueError, match="not the sha256 of its key"):
        make_router(trusted={"a": pub, "b": pub}, threshold=2)
    # Even under its real id, one key is one key.
    with pytest.raises(ValueError, match="never be met"):
        make_router(trusted={signing.keyid_of(pub): pub}, threshold=2)


def test_signatures_naming_forged_key_ids_do_not_count_twice(
    make_router: Any, signing_keys: list[Ed25519PrivateKey], table_file: Path
) -> None:
    a, b, _ = signing_keys
    router = make_router(trusted=trusted_keys([a.public_key(), b.public_key()]), threshold=2)
    body = canonical(payload(5))
    # a's signature twice, once without key id and once under b's id.
    sigs = [_sig(a, body), _sig(a, body, keyid=""), _sig(a, body, signing.keyid_of(b.public_key()))]
    result = push(table_file, _raw_envelope(body, sigs), router)
    assert isinstance(result.error, UnsignedTableError)
    assert "1 valid signature(s) from trusted keys, 2 required" in str(result.error)


# --- a signature flood costs nothing ------------------------------------------------------


def test_360000_bogus_signatures_are_refused_before_any_is_checked(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path
) -> None:
    body = canonical(payload(6))
    bogus = {"keyid": signing.keyid_of(key.public_key()),
             "sig": base64.b64encode(b"\0" * 64).decode()}
    data = _raw_envelope(body, [bogus] * 360_000)
    assert len(data) < 64 * 1024 * 1024  # under the size cap
    t0 = time.process_time()
    result = push(table_file, data, router_at_5)
    assert time.process_time() - t0 < 2.0  # was 55 CPU-seconds
    assert isinstance(result.error, MalformedTableError)
    assert "more than 64 signatures" in str(result.error)
    assert serving(router_at_5) == 5


def test_duplicate_and_unknown_signatures_stop_at_the_threshold(
    key: Ed25519PrivateKey, signing_keys: list[Ed25519PrivateKey]
) -> None:
    body = canonical(payload(6))
    other = signing_keys[2]
    calls = 0
    pub = key.public_key()

    class CountingKey:
        def verify(self, sig: bytes, message: bytes) -> None:
            nonlocal calls
            calls += 1
            pub.verify(sig, message)

        def public_bytes(self, *args: Any) -> bytes:
            return pub.public_bytes(*args)

    good = _sig(key, body)
    sigs = [good] * 30 + [_sig(other, body)] * 30 + [good]
    env = signing.parse_envelope(_raw_envelope(body, sigs))
    keyid = signing.keyid_of(pub)
    assert signing.verified_signers(env, {keyid: CountingKey()}, 1) == (keyid,)  # type: ignore[dict-item]
    assert calls == 1


# --- empty session store ---------------------------------------------------------------------


def test_an_empty_in_memory_store_is_used_not_replaced(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    store = InMemorySessionStore()
    assert not store  # falsy: it has __len__ and is empty
    write_atomically(table_file, envelope(payload(5), [key]))
    router = make_router(session_store=store)
    router.refresh()
    router.resolve("acme-legal", "primary-reasoning", "session-1")
    assert len(store) == 1


# --- signed but malformed payloads: rejected, never installed, never persisted ---------------


def _signed_raw(body: bytes, key: Ed25519PrivateKey) -> bytes:
    return signing.dump_envelope(signing.sign(body, [key]))


def test_a_signed_payload_nested_deep_is_rejected(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path, tmp_path: Path
) -> None:
    doc = payload(6)
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(200):
        schema = {"properties": {"x": schema}}
    doc["tenants"]["acme-legal"]["tools"]["lookup_clause"] = schema
    result = push(table_file, _signed_raw(canonical(doc), key), router_at_5)
    assert isinstance(result.error, MalformedTableError)
    assert "nests deeper than 64 levels" in str(result.error)
    assert json.loads((tmp_path / "floor.json").read_text())["serial"] == 5


@pytest.mark.parametrize("field,value", [
    ("group", ["a", "list"]), ("group", {"x": 1}), ("aliases", [1]), ("tools", "x"),
    ("failure_policy", ["fallback-stable"]),
])
def test_a_signed_payload_with_a_wrong_typed_field_is_rejected(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path, field: str, value: Any
) -> None:
    doc = payload(6)
    doc["tenants"]["acme-legal"][field] = value
    result = push(table_file, _signed_raw(canonical(doc), key), router_at_5)
    assert result.outcome == "rejected"
    assert isinstance(result.error, MalformedTableError)
    assert serving(router_at_5) == 5


def test_serial_10_to_the_400_is_rejected_and_never_persisted(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path, tmp_path: Path
) -> None:
    body = canonical(payload(6)).replace(b'"serial":6', b'"serial":1' + b"0" * 400)
    result = push(table_file, _signed_raw(body, key), router_at_5)
    assert isinstance(result.error, MalformedTableError)
    assert json.loads((tmp_path / "floor.json").read_text())["serial"] == 5
    # And a normal next table is still accepted: no way was lost.
    result = push(table_file, envelope(payload(7), [key]), router_at_5)
    assert result.outcome == "accepted"


def test_the_serial_bound_leaves_room_for_the_compiler_formula(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path
) -> None:
    # commits x 1,000,000 + minutes: 9 billion commits still fit.
    assert MAX_SERIAL >= 9_000_000_000 * 1_000_000 + 999_999
    assert push(table_file, envelope(payload(MAX_SERIAL), [key]), router_at_5).outcome == (
        "accepted")
    result = push(table_file, envelope(canonical(payload(1)).replace(
        b'"serial":1', b'"serial":%d' % (MAX_SERIAL + 1)), [key]), router_at_5)
    assert isinstance(result.error, MalformedTableError)


# --- one spelling per table -----------------------------------------------------------------


def _unsorted(body: bytes) -> bytes:
    doc = json.loads(body)
    doc = {"tenants": doc.pop("tenants"), **doc}
    return json.dumps(doc, separators=(",", ":")).encode()


def _variants(body: bytes) -> dict[str, bytes]:
    return {
        "duplicate key": body.replace(b'"format":', b'"format":"x","format":', 1),
        "whitespace": json.dumps(json.loads(body), sort_keys=True, indent=1).encode(),
        "unsorted keys": _unsorted(body),
        "escaped letter": body.replace(b'"format"', b'"form\\u0061t"', 1),
        "utf-16": body.decode().encode("utf-16"),
        "utf-16-le": body.decode().encode("utf-16-le"),
        "bom": b"\xef\xbb\xbf" + body,
        "float serial": body.replace(b'"serial":6', b'"serial":6.0'),
        "exponent": body.replace(b'"drain_seconds":300', b'"drain_seconds":3e2', 1),
    }


@pytest.mark.parametrize("name", list(_variants(canonical(payload(6)))))
def test_non_canonical_payload_bytes_are_rejected(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path, name: str
) -> None:
    body = _variants(canonical(payload(6)))[name]
    assert body != canonical(payload(6))
    result = push(table_file, _signed_raw(body, key), router_at_5)
    assert isinstance(result.error, MalformedTableError), result
    assert serving(router_at_5) == 5


def test_duplicate_keys_in_the_envelope_are_rejected(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path
) -> None:
    good = envelope(payload(6), [key])
    other = json.loads(envelope(payload(7), [key]))["payload"]
    # Two parsers would disagree on which payload is signed.
    data = good.replace(b'{"payload":', b'{"payload":"' + other.encode() + b'","payload":', 1)
    result = push(table_file, data, router_at_5)
    assert isinstance(result.error, MalformedTableError)
    assert "duplicate key 'payload'" in str(result.error)


@pytest.mark.parametrize("junk", ["\n", " ", "!", "=", "=="])
def test_junk_in_base64_is_rejected(
    router_at_5: Router, key: Ed25519PrivateKey, table_file: Path, junk: str
) -> None:
    doc = json.loads(envelope(payload(6), [key]))
    b64 = doc["payload"]
    doc["payload"] = b64[:8] + junk + b64[8:]
    result = push(table_file, json.dumps(doc).encode(), router_at_5)
    assert isinstance(result.error, MalformedTableError)
    assert "invalid base64" in str(result.error)


def test_base64_with_stray_bits_is_not_another_spelling_of_the_same_signature(
    key: Ed25519PrivateKey,
) -> None:
    good = base64.b64encode(b"\x01" * 64).decode()  # ends in "AQ=="
    assert good.endswith("AQ==")
    with pytest.raises(signing.EnvelopeError, match="canonical"):
        signing.parse_envelope(json.dumps({
            "payload": "", "payloadType": "t",
            "signatures": [{"keyid": "", "sig": good[:-3] + "R=="}]}).encode())


def test_url_safe_base64_is_accepted_as_dsse_allows(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    body = canonical(payload(5))
    sig = key.sign(signing.pae(signing.PAYLOAD_TYPE, body))
    data = json.dumps({"payload": base64.urlsafe_b64encode(body).decode().rstrip("="),
                       "payloadType": signing.PAYLOAD_TYPE,
                       "signatures": [{"sig": base64.urlsafe_b64encode(sig).decode()}]}).encode()
    write_atomically(table_file, data)
    router = make_router()
    assert router.refresh().outcome == "accepted"


# --- HTTP: a total deadline; a 304 is believed only after an ETag -------------------------


class _Dripper:
    """Sends a valid response one byte every ``interval`` seconds (headers included)."""

    def __init__(self, body: bytes, interval: float, drip_headers: bool) -> None:
        outer = self
        self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                data = head + body
                start = 0 if drip_headers else len(head)
                self.wfile.write(data[:start])
                for i in range(start, len(data)):
                    if outer.stop.is_set():
                        return
                    try:
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(interval)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/routing-table.dsse.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=[False, True], ids=["body", "headers"])
def dripper(request: pytest.FixtureRequest, key: Ed25519PrivateKey) -> Iterator[_Dripper]:
    server = _Dripper(envelope(payload(5), [key]), 0.05, drip_headers=request.param)
    try:
        yield server
    finally:
        server.close()


def test_a_dripping_server_cannot_hold_a_reload_past_the_deadline(
    make_router: Any, dripper: _Dripper
) -> None:
    # Every read returns within the 1 s read timeout, so only a total deadline helps.
    source = HttpSource(dripper.url, timeout=1.0, deadline=0.5)
    router = make_router(source=source)
    t0 = time.monotonic()
    result = router.refresh()
    elapsed = time.monotonic() - t0
    assert result.outcome == "source-error"
    assert "deadline of 0.5 s" in str(result.error)
    assert elapsed < 1.5


def test_a_304_to_a_request_without_an_etag_is_an_error(
    make_router: Any, table_server: TableServer
) -> None:
    table_server.status = 304
    router = make_router(source=HttpSource(table_server.url))
    result = router.refresh()
    assert result.outcome == "source-error"
    assert isinstance(result.error, SourceError)
    assert "304 to a request that sent no ETag" in str(result.error)


# --- Redis: one odd key is not an outage --------------------------------------------------


def test_one_wrong_typed_redis_key_does_not_mark_the_store_down(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path, redis_server: RedisServer
) -> None:
    store = RedisSessionStore.from_url(redis_server.url, timeout=1.0, retry_after=60)
    write_atomically(table_file, envelope(payload(5), [key]))
    router = make_router(session_store=store)
    router.refresh()
    route = router.table.routes["acme-legal"]["primary-reasoning"]  # type: ignore[union-attr]
    raw = redis.Redis.from_url(redis_server.url)
    raw.lpush(f"modelpin:session:{route.session_key}:odd", "x")
    router.resolve("acme-legal", "primary-reasoning", "odd")  # decided without the store
    router.resolve("acme-legal", "primary-reasoning", "normal")
    assert raw.get(f"modelpin:session:{route.session_key}:normal") is not None


# --- no global tricks -------------------------------------------------------------------------


def test_loading_a_table_never_touches_the_garbage_collector(
    key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []
    for name in ("disable", "enable", "freeze", "unfreeze", "set_threshold", "collect"):
        monkeypatch.setattr(gc, name, lambda *a, _n=name, **k: touched.append(_n))
    trusted = TrustedTableSet(trusted_keys([key.public_key()]))
    table = trusted.verify(envelope(payload(5), [key]), time.time())
    assert table is not None
    assert touched == []


def test_the_gc_state_of_the_host_process_is_left_alone_while_a_router_reloads(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(5), [key]))
    router = make_router()
    gc.disable()
    try:
        router.refresh()
        assert not gc.isenabled()  # the old code re-enabled it on the way out
    finally:
        gc.enable()
    gc.enable()
    write_atomically(table_file, envelope(payload(6), [key]))
    router.refresh()
    assert gc.isenabled()
