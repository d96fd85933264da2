"""``document.parse_json`` builds exactly what the YAML parser builds from a .json file.

JSON files (signed evidence) are read by the C JSON decoder when that provably gives
the same data as YAML; everything else goes to the YAML parser, so data, diagnostics
and positions never depend on which reader ran.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpin.load import document
from modelpin.load.document import MAX_DEPTH, MAX_SAFE_NUMBER, parse, parse_json

PATH = "evidence/acme/primary/gpt-5-2026-03-14.dsse.json"


def _same(raw: bytes) -> None:
    fast, slow = parse_json(PATH, raw), parse(PATH, raw)
    assert fast.data == slow.data
    assert type(fast.data) is type(slow.data)
    assert fast.diagnostics == slow.diagnostics
    assert fast.text == slow.text
    if fast.data is not None:
        assert _types(fast.data) == _types(slow.data)  # 1 and True, 0 and False differ


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__, value


CASES = [
    b'{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    b'{"a":1,"b":"x:y #z","c":-0}',
    b'{"a": 1, "a": 2}',  # duplicate key: MP004 at its position
    b'{"n": 9007199254740991, "m": -9007199254740991}',
    b'{"n": 9007199254740992}',  # beyond I-JSON: MP012
    b'{"n": 100000000000000000000000000000000000000000}',
    b'{"f": 1.5, "g": 1e30, "h": 1.0e+30, "i": 1E5}',  # YAML 1.1 reads some as strings
    b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}',
    b'{"s": "tab\there"}', b'{"s":\t"v"}', b'{"s": "\\u00e9\\n\\"\\/"}',
    b'{"s": "\\ud83d\\ude00"}', b'{"s": "\\ud800"}',
    '{"s": "x\u0085y", "t": "\u2028", "u": "\u00e9", "v": "\ufeff"}'.encode(),
    '\ufeff{"a": 1}'.encode(),
    b'{"' + b"k" * 1100 + b'": 1}', b'{"' + b"k" * 1000 + b'": 1}', b'{"": 1}',
    b"[1, 2]", b'"text"', b"12", b"", b"   ", b"{}", b'{"a": 1} {"b": 2}', b'{"a": 1,}',
    b'{"a": 1}\n---\n{"b": 2}\n', b"{'a': 1}", b'{"a": 1} # comment', b"\xff\xfe",
    b"{" + b'"a":[' * (MAX_DEPTH + 2) + b"1" + b"]" * (MAX_DEPTH + 2) + b"}",
    b"{" + b'"a":[' * (MAX_DEPTH - 2) + b"1" + b"]" * (MAX_DEPTH - 2) + b"}",
    b'{"a": [' + b",".join([b"0"] * 200_001) + b"]}",  # the node budget
    b'{"a": "yes", "b": "on", "c": "2026-03-14", "d": "0x1f", "e": "~"}',
    b'{"a": 1}\r\n', b'{\r"a": 1\r}',
]


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_fast_path_equals_the_yaml_parser(raw: bytes) -> None:
    _same(raw)


_KEYS = st.text(alphabet=st.sampled_from(list('ab$#:-"\\\t\u00e9\u0085\u2028 ')), max_size=6)
_LEAVES = st.one_of(
    st.none(), st.booleans(),
    st.integers(-MAX_SAFE_NUMBER - 3, MAX_SAFE_NUMBER + 3),
    st.integers(-MAX_SAFE_NUMBER, MAX_SAFE_NUMBER),
    st.floats(allow_nan=False, allow_infinity=False), _KEYS,
)
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.booleans(),
       st.sampled_from([None, 2, "\t"]))
def test_any_json_object_reads_the_same(value: dict[str, Any], ascii_only: bool,
                                        indent: int | str | None) -> None:
    _same(json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode("utf-8"))


def test_signed_evidence_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelpin import attestation

    result = {"tenant": "acme", "alias": "primary", "baseline": "gpt-5-2026-01-10",
              "candidate": "gpt-5-2026-03-14", "suite": {"id": "s", "version": 7},
              "judge": "claude-4-20260201", "run_at": "2026-03-19T22:00:00Z",
              "cases": 512, "passed": 507, "failures": []}
    raw = attestation.sign(result, [Ed25519PrivateKey.generate()])
    expected = parse(PATH, raw)
    calls: list[str] = []
    monkeypatch.setattr(document, "parse", lambda *a, **k: calls.append("yaml"))
    fast = parse_json(PATH, raw)
    assert calls == [] and fast.data == expected.data and not fast.diagnostics
