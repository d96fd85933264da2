"""Tool-call contracts: a tool call's arguments against the tenant's JSON Schema.

Validators are compiled once per table and tool, on first use (compiling all of them
at load would put 10,000 tenants' schemas on the reload path), and reused for every
call. A failing call gets the tenant's failure policy:

- ``fallback-stable``: the answer is ``RETRY_ON_STABLE``, re-run the turn on stable.
- ``structured-error``: the answer is ``RETURN_ERROR`` with ``error_result``, a structured
  error to hand back to the model as the tool's result.

A call from a shadow model is never executed: its answer is always ``COMPARE_ONLY``
(with ``valid`` still computed, for the comparison). A tool the tenant has no contract
for is an invalid call; a contract that is not a valid JSON Schema fails every call.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Any

from jsonschema import exceptions as js_exceptions
from jsonschema import validators as js_validators

from .coercion import SchemaError, coerce
from .table import FALLBACK_STABLE, TenantPolicy

log = logging.getLogger("modelpin.router.coercion")


class ToolAction(enum.Enum):
    EXECUTE = "execute"
    RETRY_ON_STABLE = "retry-on-stable"
    RETURN_ERROR = "return-error"
    COMPARE_ONLY = "compare-only"


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """``coercions`` names the repairs applied (``coercion.py``); then ``arguments``
    holds the repaired arguments to execute instead of those given (else it is None)."""

    valid: bool
    action: ToolAction
    errors: tuple[str, ...] = ()
    error_result: dict[str, Any] | None = None
    coercions: tuple[str, ...] = ()
    arguments: Any = None


_OK = ToolCallResult(True, ToolAction.EXECUTE)
_SHADOW_OK = ToolCallResult(True, ToolAction.COMPARE_ONLY)


class _Validator:
    __slots__ = ("broken", "validator")

    def __init__(self, schema: Any) -> None:
        cls = js_validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except js_exceptions.SchemaError as exc:
            self.broken: str | None = (
                f"the tool's contract is not a valid JSON Schema: {exc.message}"
            )
            self.validator = None
            return
        self.broken = None
        self.validator = cls(schema)

    def errors(self, arguments: Any) -> tuple[str, ...]:
        if self.validator is None:
            assert self.broken is not None
            return (self.broken,)
        return tuple(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message}"
            for e in sorted(self.validator.iter_errors(arguments), key=lambda e: e.path)
        )

    def type_errors(self, arguments: Any) -> list[SchemaError]:
        """The ``type`` errors of ``arguments`` (what a coercion may repair)."""
        if self.validator is None:
            return []
        out = []
        for e in self.validator.iter_errors(arguments):
            if e.validator != "type":
                continue
            expected: Any = e.validator_value
            types = (expected,) if isinstance(expected, str) else tuple(expected)
            out.append(SchemaError(tuple(e.absolute_path), types, e.instance))
        return out


class ToolContracts:
    """The tool-call contracts of one table; validators cached per (tenant, tool)."""

    def __init__(self) -> None:
        self._validators: dict[str, dict[str, _Validator]] = {}
        self._lock = threading.Lock()

    def _validator(self, tenant: str, policy: TenantPolicy, tool: str) -> _Validator | None:
        by_tool = self._validators.get(tenant)
        if by_tool is not None:
            v = by_tool.get(tool)
            if v is not None:
                return v
        schema = policy.tools.get(tool)
        if schema is None:
            return None
        with self._lock:
            by_tool = self._validators.setdefault(tenant, {})
            v = by_tool.get(tool)
            if v is None:
                v = by_tool[tool] = _Validator(schema)
            return v

    def check(
        self, tenant: str, policy: TenantPolicy, tool: str, arguments: Any, *, shadow: bool
    ) -> ToolCallResult:
        validator = self._validator(tenant, policy, tool)
        if validator is None:
            errors: tuple[str, ...] = (f"tenant {tenant!r} has no contract for tool {tool!r}",)
        else:
            errors = validator.errors(arguments)
        if not errors:
            return _SHADOW_OK if shadow else _OK
        if policy.coercions and validator is not None:
            fixed, applied = coerce(arguments, policy.coercions, validator.type_errors)
            if applied and not validator.errors(fixed):
                for name in applied:
                    log.info("tenant %s tool %s: coerced (%s)%s", tenant, tool, name,
                             " [shadow]" if shadow else "")
                action = ToolAction.COMPARE_ONLY if shadow else ToolAction.EXECUTE
                return ToolCallResult(True, action, coercions=applied, arguments=fixed)
        if shadow:
            return ToolCallResult(False, ToolAction.COMPARE_ONLY, errors)
        if policy.failure_policy == FALLBACK_STABLE:
            return ToolCallResult(False, ToolAction.RETRY_ON_STABLE, errors)
        return ToolCallResult(
            False,
            ToolAction.RETURN_ERROR,
            errors,
            {
                "error": {
                    "type": "invalid_tool_call",
                    "tool": tool,
                    "message": f"the arguments of {tool!r} do not match its contract",
                    "details": list(errors),
                }
            },
        )
