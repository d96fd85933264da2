"""Bucketing is the language-neutral contract: the vectors file is what another
implementation replays, so it is checked against an independent rendering of the
spec formula as well as against the library."""

from __future__ import annotations

import hashlib
import json
import struct
from importlib import resources

from modelpin.router import basis_points, bucket, in_canary
from tests.router.tables import salt_of


def _vectors() -> dict:  # type: ignore[type-arg]
    text = resources.files("modelpin.router").joinpath("bucketing-vectors.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def _spec_bucket(salt: str, session_id: str) -> int:
    # docs/routing-table.md, written independently of modelpin.router.bucketing
    h = hashlib.sha256(f"{salt}:{session_id}".encode()).digest()
    (u32,) = struct.unpack(">I", h[:4])
    return (u32 * 10000) // (2**32)


def test_vectors_replay_through_the_library_and_the_spec_formula() -> None:
    doc = _vectors()
    assert len(doc["vectors"]) >= 50
    for v in doc["vectors"]:
        key = bytes.fromhex(v["key_utf8_hex"])
        assert key == f"{v['salt']}:{v['session_id']}".encode()
        assert hashlib.sha256(key).hexdigest()[:8] == v["sha256_prefix_hex"]
        assert bucket(v["salt"], v["session_id"]) == v["bucket"] == _spec_bucket(
            v["salt"], v["session_id"]
        )
        for percent, expected in v["canary_at"].items():
            assert in_canary(v["salt"], v["session_id"], float(percent)) is expected


def test_vectors_cover_the_edges() -> None:
    doc = _vectors()
    buckets = {v["bucket"] for v in doc["vectors"]}
    assert {0, 9999} <= buckets
    assert any(v["session_id"] == "" for v in doc["vectors"])
    assert any(not v["session_id"].isascii() for v in doc["vectors"])
    for s in doc["salts"]:
        assert salt_of(s["tenant"], s["alias"], s["candidate"]) == s["salt"]
        assert hashlib.sha256(s["salt_input"].encode()).hexdigest()[:16] == s["salt"]


def test_basis_points_have_0_01_resolution() -> None:
    assert basis_points(5) == 500
    assert basis_points(0.01) == 1
    assert basis_points(33.33) == 3333
    assert basis_points(0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floats
    assert basis_points(100) == 10000


def test_raising_the_percent_only_moves_sessions_stable_to_canary() -> None:
    salt = salt_of("acme-legal", "primary-reasoning", "gpt-5-2026-03-14")
    sessions = [f"s-{i}" for i in range(5000)]
    previous: set[str] = set()
    for percent in (0.01, 1, 5, 25, 50, 99.99, 100):
        canary = {s for s in sessions if in_canary(salt, s, percent)}
        assert previous <= canary, f"a session left the canary when raising to {percent}"
        previous = canary
    assert previous == set(sessions)


def test_100000_sessions_at_25_percent_land_within_half_a_point() -> None:
    salt = salt_of("acme-legal", "primary-reasoning", "gpt-5-2026-03-14")
    n = 100_000
    canary = sum(1 for i in range(n) if bucket(salt, f"session-{i}") < 2500)
    assert abs(canary / n * 100 - 25) <= 0.5, canary


def test_a_new_candidate_reshuffles_buckets() -> None:
    a = salt_of("t", "a", "model-1")
    b = salt_of("t", "a", "model-2")
    same = sum(bucket(a, f"s{i}") == bucket(b, f"s{i}") for i in range(2000))
    assert same < 20  # independent: ~2000/10000 expected collisions
