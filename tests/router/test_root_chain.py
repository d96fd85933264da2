"""The trust root chain, attacked in the style of python-tuf's
``tests/test_updater_top_level_update.py``: a repository publishes ``<N>.root.json``
beside the table, a router configured with root 1 follows it; every bad root is refused
and the router keeps its root and its table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.router import (
    ExpiredRootError,
    RollbackError,
    RootRejected,
    RootVersionError,
    Router,
    UnsignedTableError,
)
from modelpin.router.root import ROOT_PAYLOAD_TYPE, root_payload
from tests.router.tables import envelope, payload, write_atomically

FAR = "2099-01-01T00:00:00Z"


def _k() -> Ed25519PrivateKey:
    return signing.generate_private_key()


def _id(key: Ed25519PrivateKey) -> str:
    return signing.keyid_of(key.public_key())


@dataclass
class Repo:
    """A repository simulator (python-tuf's RepositorySimulator, small): it owns the
    keys, writes roots and tables into ``directory`` as the publish workflow does."""

    directory: Path
    root_keys: list[Ed25519PrivateKey] = field(default_factory=lambda: [_k()])
    root_threshold: int = 1
    table_keys: list[Ed25519PrivateKey] = field(default_factory=lambda: [_k()])
    table_threshold: int = 1
    version: int = 0
    expires_at: str = FAR
    serial_floor: int | None = None

    @property
    def table_file(self) -> Path:
        return self.directory / "routing-table.dsse.json"

    def root_bytes(self, signers: list[Ed25519PrivateKey], version: int | None = None) -> bytes:
        keys = {_id(k): (signing.public_key_b64(k.public_key()), None)
                for k in self.root_keys + self.table_keys}
        doc = root_payload(
            version=self.version if version is None else version,
            expires_at=self.expires_at, keys=keys,
            roles={"root": (sorted(_id(k) for k in self.root_keys), self.root_threshold),
                   "table": (sorted(_id(k) for k in self.table_keys), self.table_threshold)},
            serial_floor=self.serial_floor)
        return signing.dump_envelope(signing.sign(rfc8785.dumps(doc), signers,
                                                  ROOT_PAYLOAD_TYPE))

    def publish_root(self, signers: list[Ed25519PrivateKey] | None = None) -> bytes:
        """Write the next root version, signed by ``signers`` (default: the current root
        keys, i.e. what a rotation that changed nothing would need)."""
        self.version += 1
        data = self.root_bytes(signers if signers is not None else self.root_keys)
        (self.directory / f"{self.version}.root.json").write_bytes(data)
        return data

    def publish_table(self, serial: int, signers: list[Ed25519PrivateKey] | None = None) -> None:
        write_atomically(self.table_file,
                         envelope(payload(serial), signers or self.table_keys))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    directory = tmp_path / "site"
    directory.mkdir()
    r = Repo(directory)
    r.publish_root()
    r.publish_table(5)
    return r


@pytest.fixture
def make(tmp_path: Path, repo: Repo) -> Any:
    def router(**kw: Any) -> Router:
        kw.setdefault("state_file", tmp_path / "state.json")
        return Router(repo.table_file, root=repo.directory / "1.root.json",
                      registry=CollectorRegistry(), **kw)
    return router


def _serial(router: Router) -> int:
    return int(router.resolve("acme-legal", "embedder", "s").serial)


def test_a_router_configured_with_root_1_loads_the_table(make: Any) -> None:
    router = make()
    assert router.refresh().outcome == "accepted"
    assert _serial(router) == 5
    assert router.status().root_version == 1


def test_key_rotation_in_band(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    old_root, old_table = repo.root_keys, repo.table_keys
    repo.root_keys, repo.table_keys = [_k()], [_k()]
    repo.publish_root(signers=old_root + repo.root_keys)  # old and new thresholds
    repo.publish_table(6)
    assert router.refresh().outcome == "accepted"
    assert router.status().root_version == 2 and _serial(router) == 6
    # The old table key is no longer trusted.
    repo.publish_table(7, signers=old_table)
    result = router.refresh()
    assert isinstance(result.error, UnsignedTableError)
    assert _serial(router) == 6


def test_revocation_of_a_compromised_table_key(make: Any, repo: Repo, tmp_path: Path) -> None:
    compromised = repo.table_keys[0]
    router = make()
    router.refresh()
    # The attacker signs a table with the stolen key; routers accept it (it is trusted).
    repo.publish_table(9, signers=[compromised])
    assert router.refresh().outcome == "accepted"
    # The owners revoke the key in root 2, with a fresh key, and lower the floor back to
    # the last good serial (the attacker's serial 9 would block their serial 6 otherwise).
    repo.table_keys = [_k()]
    repo.serial_floor = 5
    repo.publish_root()
    repo.publish_table(6)
    assert router.refresh().outcome == "accepted"
    assert _serial(router) == 6
    # The attacker's key signs nothing any more, whatever the serial.
    repo.publish_table(10, signers=[compromised])
    assert isinstance(router.refresh().error, UnsignedTableError)
    # And a restart trusts root 2 at once, without fetching the chain again.
    for name in ("2.root.json",):
        (repo.directory / name).unlink()
    restarted = make()
    assert restarted.status().root_version == 2
    assert isinstance(restarted.refresh().error, UnsignedTableError)


def test_a_root_signed_only_by_the_new_keys_is_refused(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    repo.root_keys = [_k()]  # the attacker's "new" root key
    repo.table_keys = [_k()]
    repo.publish_root()  # signed by the new root key only
    repo.publish_table(6)
    result = router.refresh()
    assert isinstance(result.error, RootRejected)
    assert "not signed by 1 of the root keys of the trusted root version 1" in str(result.error)
    assert router.status().root_version == 1 and _serial(router) == 5


def test_a_root_signed_only_by_the_old_keys_is_refused(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    old = repo.root_keys
    repo.root_keys = [_k()]
    repo.publish_root(signers=old)
    result = router.refresh()
    assert isinstance(result.error, RootRejected)
    assert "root version 2 itself" in str(result.error)


def test_thresholds_count_distinct_keys_for_roots_too(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    second = _k()
    repo.root_keys = [repo.root_keys[0], second]
    repo.root_threshold = 2
    # Root 2 needs 1 of root 1's keys and 2 of its own: one key signing twice is one.
    repo.publish_root(signers=[repo.root_keys[0], repo.root_keys[0]])
    assert isinstance(router.refresh().error, RootRejected)
    (repo.directory / "2.root.json").write_bytes(repo.root_bytes(repo.root_keys, version=2))
    assert router.refresh().error is None
    assert router.status().root_version == 2


def test_rollback_of_the_root_version_is_refused(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    repo.publish_root()  # version 2, good
    assert router.refresh().error is None and router.status().root_version == 2
    # An attacker serves root 1 (validly signed) under the name 3.root.json.
    (repo.directory / "3.root.json").write_bytes((repo.directory / "1.root.json").read_bytes())
    result = router.refresh()
    assert isinstance(result.error, RootVersionError)
    assert "expected version 3, got 1" in str(result.error)
    assert router.status().root_version == 2


def test_root_expiry_stops_new_tables_but_not_the_current_one(
    make: Any, repo: Repo
) -> None:
    router = make()
    router.refresh()
    repo.expires_at = "2020-01-01T00:00:00Z"
    repo.publish_root()
    repo.publish_table(6)
    result = router.refresh()
    assert isinstance(result.error, ExpiredRootError)
    assert router.status().root_version == 2  # adopted: intermediate expiry is allowed
    assert _serial(router) == 5  # the table already held is still served
    # A newer root with a future expiry repairs it.
    repo.expires_at = FAR
    repo.publish_root()
    assert router.refresh().outcome == "accepted" and _serial(router) == 6


def test_an_expired_intermediate_root_is_walked_through(make: Any, repo: Repo) -> None:
    router = make()
    repo.expires_at = "2020-01-01T00:00:00Z"
    repo.publish_root()
    repo.expires_at = FAR
    repo.publish_root()
    repo.publish_table(6)
    assert router.refresh().outcome == "accepted"
    assert router.status().root_version == 3


def test_recovery_from_a_runaway_serial(make: Any, repo: Repo, tmp_path: Path) -> None:
    router = make()
    router.refresh()
    # A pipeline bug publishes serial 10**15; every router takes it.
    repo.publish_table(10**15)
    assert router.refresh().outcome == "accepted"
    repo.publish_table(6)
    assert isinstance(router.refresh().error, RollbackError)
    # Recovery: root 2 lowers the floor (and rotates the key that signed the runaway
    # table, so that table cannot be replayed to push the floor up again).
    runaway_key = repo.table_keys[0]
    repo.table_keys = [_k()]
    repo.serial_floor = 6
    repo.publish_root()
    repo.publish_table(6)
    assert router.refresh().outcome == "accepted"
    assert _serial(router) == 6
    assert json.loads((tmp_path / "state.json").read_text())["serial"] == 6
    repo.publish_table(10**15, signers=[runaway_key])
    assert isinstance(router.refresh().error, UnsignedTableError)
    # Below the lowered floor is still a rollback.
    repo.publish_table(5)
    assert isinstance(router.refresh().error, RollbackError)


def test_a_tampered_root_is_refused(make: Any, repo: Repo) -> None:
    router = make()
    router.refresh()
    data = json.loads(repo.root_bytes(repo.root_keys, version=2))
    data["signatures"][0]["sig"] = data["signatures"][0]["sig"][::-1]
    (repo.directory / "2.root.json").write_text(json.dumps(data))
    assert isinstance(router.refresh().error, RootRejected)
    assert router.status().root_version == 1


def test_a_table_root_or_keyid_mismatch_in_the_root_is_refused(tmp_path: Path) -> None:
    key = _k()
    doc = root_payload(version=1, expires_at=FAR,
                       keys={"ab" * 32: (signing.public_key_b64(key.public_key()), None)},
                       roles={"root": (["ab" * 32], 1), "table": (["ab" * 32], 1)})
    data = signing.dump_envelope(signing.sign(rfc8785.dumps(doc), [key], ROOT_PAYLOAD_TYPE))
    with pytest.raises(RootRejected, match="not the sha256 of its public key"):
        Router(tmp_path / "t.json", root=data, registry=CollectorRegistry())


def test_the_initial_root_must_be_signed_by_itself(tmp_path: Path, repo: Repo) -> None:
    data = repo.root_bytes([_k()], version=1)
    with pytest.raises(RootRejected, match="root version 1 itself"):
        Router(repo.table_file, root=data, registry=CollectorRegistry())


def test_a_plain_key_list_still_works_without_a_root(tmp_path: Path, repo: Repo) -> None:
    router = Router(repo.table_file, [repo.table_keys[0].public_key()],
                    registry=CollectorRegistry())
    assert router.refresh().outcome == "accepted"
    assert router.status().root_version is None


def test_roots_are_followed_over_http(repo: Repo, table_server: Any, tmp_path: Path) -> None:
    # TableServer serves one body at /table; the roots come from a second server path.
    import http.server
    import threading

    directory = repo.directory

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, directory=str(directory), **k)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/routing-table.dsse.json"
        old = repo.root_keys
        repo.root_keys, repo.table_keys = [_k()], [_k()]
        repo.publish_root(signers=old + repo.root_keys)
        repo.publish_table(6)
        router = Router(url, root=directory / "1.root.json", registry=CollectorRegistry(),
                        state_file=tmp_path / "s.json")
        assert router.refresh().outcome == "accepted"
        assert router.status().root_version == 2 and _serial(router) == 6
    finally:
        httpd.shutdown()
        httpd.server_close()
