"""Interop: our envelopes are standard DSSE, verified by securesystemslib's DSSE API given
only the public key; envelopes signed by an independent Ed25519 implementation (PyNaCl,
libsodium) and by securesystemslib are accepted by the router; DSSE's keyid is optional."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from modelpin import signing
from tests.router.tables import canonical, envelope, payload, write_atomically


def test_the_dsse_spec_pae_test_vector() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/master/protocol.md#test-vectors
    assert signing.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_our_envelope_verifies_with_securesystemslib_given_the_public_key(
    key: Ed25519PrivateKey,
) -> None:
    data = envelope(payload(5), [key])
    sslib = SslibEnvelope.from_dict(json.loads(data))
    public = SSlibKey.from_crypto(key.public_key(), keyid=signing.keyid_of(key.public_key()),
                                  scheme="ed25519")
    accepted = sslib.verify([public], 1)
    assert list(accepted) == [signing.keyid_of(key.public_key())]
    assert sslib.pae() == signing.pae(signing.PAYLOAD_TYPE, canonical(payload(5)))


def test_a_securesystemslib_signed_envelope_is_accepted_by_the_router(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    public = SSlibKey.from_crypto(key.public_key(), keyid=signing.keyid_of(key.public_key()),
                                  scheme="ed25519")
    sslib = SslibEnvelope(canonical(payload(5)), signing.PAYLOAD_TYPE, {})
    sslib.sign(CryptoSigner(key, public))
    write_atomically(table_file, json.dumps(sslib.to_dict()).encode())
    assert make_router().refresh().outcome == "accepted"


def test_signatures_from_pynacl_are_accepted_with_and_without_keyid(
    make_router: Any, table_file: Path
) -> None:
    nacl_key = nacl.signing.SigningKey.generate()
    raw_public = bytes(nacl_key.verify_key)
    public = Ed25519PublicKey.from_public_bytes(raw_public)
    body = canonical(payload(5))
    sig = nacl_key.sign(signing.pae(signing.PAYLOAD_TYPE, body)).signature
    for with_keyid in (True, False):
        entry = {"sig": base64.b64encode(sig).decode()}
        if with_keyid:
            entry["keyid"] = signing.keyid_of(public)
        write_atomically(table_file, json.dumps({
            "payload": base64.b64encode(body).decode(), "payloadType": signing.PAYLOAD_TYPE,
            "signatures": [entry]}).encode())
        router = make_router(trusted={signing.keyid_of(public): public},
                             state_file=table_file.with_suffix(f".{with_keyid}.state"))
        result = router.refresh()
        assert result.outcome == "accepted", result.error
        assert router.table.signed_by == (signing.keyid_of(public),)


def test_pynacl_verifies_what_we_sign(key: Ed25519PrivateKey) -> None:
    env = signing.parse_envelope(envelope(payload(5), [key]))
    raw = signing.raw_public_bytes(key.public_key())
    nacl.signing.VerifyKey(raw).verify(signing.pae(env.payload_type, env.payload),
                                       env.signatures[0].sig)
