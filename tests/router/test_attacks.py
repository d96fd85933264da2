"""Attacks on the update path, python-tuf style: each bad table is rejected, the router
keeps serving the last good one, and says so (status, metrics)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.router import (
    ExpiredTableError,
    MalformedTableError,
    OversizeTableError,
    RollbackError,
    SerialConflictError,
    StateFileError,
    TableUnavailableError,
    UnsignedTableError,
    trusted_keys,
)
from tests.router.tables import (
    canonical,
    envelope,
    payload,
    push,
    serving,
    with_route,
    write_atomically,
)


def _assert_rejected(router: Any, result: Any, error: type, registry_kind: str) -> None:
    assert result.outcome == "rejected"
    assert isinstance(result.error, error)
    assert serving(router) == 5
    status = router.status()
    assert status.serial == 5 and status.last_error_kind == registry_kind
    assert status.consecutive_failures >= 1


def test_rollback_to_an_older_serial_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    result = push(table_file, envelope(payload(4), [key]), router_at_5)
    _assert_rejected(router_at_5, result, RollbackError, "rollback")


def test_same_serial_other_bytes_is_an_alarm(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    other = with_route(payload(5), "acme-legal", "primary-reasoning", mode="canary", percent=50)
    router = router_at_5
    result = push(table_file, envelope(other, [key]), router)
    _assert_rejected(router, result, SerialConflictError, "serial-conflict")
    assert router.resolve("acme-legal", "primary-reasoning", "x").serial == 5


def test_same_serial_same_bytes_is_a_no_op(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    # Re-signed (a second signature makes other envelope bytes) but the same payload.
    result = push(table_file, envelope(payload(5), [key, key]), router_at_5)
    assert result.outcome == "unchanged" and result.error is None
    assert router_at_5.status().last_error is None


def test_expired_table_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    old = payload(6, issued_at="2020-01-01T00:00:00Z", expires_at="2020-01-08T00:00:00Z")
    result = push(table_file, envelope(old, [key]), router_at_5)
    _assert_rejected(router_at_5, result, ExpiredTableError, "expired")


def test_unsigned_envelope_is_rejected(router_at_5: Any, table_file: Path) -> None:
    body = canonical(payload(6))
    unsigned = json.dumps({
        "payloadType": signing.PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [],
    }).encode()
    result = push(table_file, unsigned, router_at_5)
    _assert_rejected(router_at_5, result, UnsignedTableError, "unsigned")


def test_signature_by_an_untrusted_key_is_rejected(
    router_at_5: Any, signing_keys: list[Ed25519PrivateKey], table_file: Path
) -> None:
    result = push(table_file, envelope(payload(6), [signing_keys[1]]), router_at_5)
    _assert_rejected(router_at_5, result, UnsignedTableError, "unsigned")


def test_trusted_key_id_with_a_forged_signature_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, signing_keys: list[Ed25519PrivateKey],
    table_file: Path,
) -> None:
    # The attacker claims the trusted key id but signs with their own key.
    env = json.loads(envelope(payload(6), [signing_keys[2]]))
    env["signatures"][0]["keyid"] = signing.keyid_of(key.public_key())
    result = push(table_file, json.dumps(env).encode(), router_at_5)
    _assert_rejected(router_at_5, result, UnsignedTableError, "unsigned")


def test_payload_swapped_under_a_valid_signature_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    env = json.loads(envelope(payload(6), [key]))
    env["payload"] = base64.b64encode(canonical(payload(7))).decode()
    result = push(table_file, json.dumps(env).encode(), router_at_5)
    _assert_rejected(router_at_5, result, UnsignedTableError, "unsigned")


def test_below_threshold_is_rejected_and_k_of_n_is_accepted(
    make_router: Any, signing_keys: list[Ed25519PrivateKey], table_file: Path
) -> None:
    a, b, c = signing_keys
    router = make_router(
        trusted=trusted_keys([a.public_key(), b.public_key(), c.public_key()]), threshold=2
    )
    # One key signing twice still counts once.
    write_atomically(table_file, envelope(payload(5), [a, a]))
    result = router.refresh()
    assert isinstance(result.error, UnsignedTableError)
    with pytest.raises(TableUnavailableError):
        router.resolve("acme-legal", "embedder", "s")
    write_atomically(table_file, envelope(payload(5), [a, c]))
    assert router.refresh().outcome == "accepted"
    assert serving(router) == 5


def test_oversize_envelope_is_rejected_before_parsing(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    good = envelope(payload(5), [key])
    write_atomically(table_file, good)
    router = make_router(max_bytes=len(good) + 10)
    assert router.refresh().outcome == "accepted"
    big = payload(6)
    big["tenants"]["acme-legal"]["tools"]["padding"] = {"description": "x" * 5000}
    result = push(table_file, envelope(big, [key]), router)
    _assert_rejected(router, result, OversizeTableError, "oversize")


def test_wrong_payload_type_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    data = envelope(payload(6), [key], payload_type="application/vnd.in-toto+json")
    result = push(table_file, data, router_at_5)
    _assert_rejected(router_at_5, result, UnsignedTableError, "unsigned")
    assert "payloadType" in str(result.error)


def test_signed_but_schema_invalid_payload_is_rejected(
    router_at_5: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    bad = payload(6)
    bad["tenants"]["acme-legal"]["aliases"]["embedder"]["surprise"] = True
    result = push(table_file, envelope(bad, [key]), router_at_5)
    _assert_rejected(router_at_5, result, MalformedTableError, "malformed")
    assert "unknown surprise" in str(result.error)


def test_garbage_bytes_are_rejected(router_at_5: Any, table_file: Path) -> None:
    result = push(table_file, b"\x00\xffnot json", router_at_5)
    _assert_rejected(router_at_5, result, MalformedTableError, "malformed")


def test_a_restarted_router_never_accepts_an_older_table(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path, tmp_path: Path
) -> None:
    state = tmp_path / "floor.json"
    write_atomically(table_file, envelope(payload(7), [key]))
    first = make_router(state_file=state)
    assert first.refresh().outcome == "accepted"
    assert json.loads(state.read_text())["serial"] == 7

    # The mirror now serves an older, validly signed table; a fresh process starts.
    write_atomically(table_file, envelope(payload(6), [key]))
    restarted = make_router(state_file=state)
    result = restarted.refresh()
    assert isinstance(result.error, RollbackError)
    with pytest.raises(TableUnavailableError):
        restarted.resolve("acme-legal", "embedder", "s")

    # The same table it held before the restart is loaded again (not a no-op).
    write_atomically(table_file, envelope(payload(7), [key]))
    assert restarted.refresh().outcome == "accepted"
    assert serving(restarted) == 7

    # And a same-serial table with other content is still refused after a restart.
    other = with_route(payload(7), "acme-legal", "primary-reasoning", mode="canary", percent=50)
    write_atomically(table_file, envelope(other, [key]))
    again = make_router(state_file=state)
    assert isinstance(again.refresh().error, SerialConflictError)


def test_a_corrupt_state_file_fails_closed(make_router: Any, tmp_path: Path) -> None:
    state = tmp_path / "floor.json"
    state.write_text("{not json")
    with pytest.raises(StateFileError):
        make_router(state_file=state)


def test_rejections_are_counted_in_prometheus(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    registry = CollectorRegistry()
    write_atomically(table_file, envelope(payload(5), [key]))
    router = make_router(registry=registry, name="gw-1")
    router.refresh()
    push(table_file, envelope(payload(4), [key]), router)
    labels = {"router": "gw-1", "outcome": "rollback"}
    assert registry.get_sample_value("modelpin_router_reloads_total", labels) == 1
    assert registry.get_sample_value(
        "modelpin_router_alarms_total", {"router": "gw-1", "kind": "rollback"}
    ) == 1
    assert registry.get_sample_value("modelpin_router_table_serial", {"router": "gw-1"}) == 5
