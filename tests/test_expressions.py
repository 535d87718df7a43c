"""Expressions: strict, sandboxed, and never a silent empty value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tourniquet.engine.expressions import evaluate, parse_duration, parse_template, resolve_instant
from tourniquet.errors import ExpressionError

SCOPE = {
    "inputs": {"accounts": ["jdupont", "mmartin"], "reason": "alert 42", "since": "2025-09-01T00:00:00+00:00"},
    "steps": {"resolve": {"accounts": [{"uid": "jdupont", "dn": "uid=jdupont,ou=people"}]}},
    "limits": {"max_accounts": 20},
}


@pytest.mark.parametrize("text, expected", [
    ("${{ inputs.accounts }}", ["jdupont", "mmartin"]),
    ("${{ len(inputs.accounts) }}", 2),
    ("${{ steps.resolve.accounts[0].uid }}", "jdupont"),
    ("${{ pluck(steps.resolve.accounts, 'uid') }}", ["jdupont"]),
    ("${{ len(inputs.accounts) > limits.max_accounts }}", False),
    ("${{ 'jdupont' in inputs.accounts }}", True),
    ("Alert: ${{ inputs.reason }} for ${{ join(inputs.accounts) }}", "Alert: alert 42 for jdupont, mmartin"),
    ("${{ inputs['reason'] }}", "alert 42"),
    ("${{ upper(inputs.reason) if inputs.reason else 'none' }}", "ALERT 42"),
    ("no expression at all", "no expression at all"),
])
def test_evaluates(text: str, expected: object) -> None:
    assert evaluate(text, SCOPE) == expected


@pytest.mark.parametrize("text, message", [
    ("${{ inputs.acounts }}", "inputs has no 'acounts'"),
    ("${{ nothing }}", "name 'nothing' is not defined"),
    ("${{ steps.resolve.accounts[3] }}", "out of range"),
    ("${{ inputs.__class__ }}", "private attribute"),
    ("${{ __import__('os') }}", "unknown function '__import__'"),
    ("${{ _secret }}", "private name"),
    ("${{ open('/etc/passwd') }}", "unknown function 'open'"),
    ("${{ inputs.reason.upper() }}", "unknown function"),
    ("${{ [x for x in inputs.accounts] }}", "ListComp is not allowed"),
    ("${{ lambda: 1 }}", "Lambda is not allowed"),
    ("${{ 'a' * 100000000 }}", "repeating strings or lists is not allowed"),
    ("${{ inputs.accounts + }}", "invalid expression"),
    ("${{ len(x=1) }}", "keyword arguments are not allowed"),
])
def test_refuses(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=None) as raised:
        evaluate(text, SCOPE)
    assert message in str(raised.value)


def test_durations_and_instants() -> None:
    assert parse_duration("-30d") == -timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    now = datetime(2025, 9, 8, tzinfo=timezone.utc)
    assert resolve_instant("-7d", now=now) == datetime(2025, 9, 1, tzinfo=timezone.utc)
    assert resolve_instant("2025-09-01T00:00:00Z") == datetime(2025, 9, 1, tzinfo=timezone.utc)
    with pytest.raises(ExpressionError):
        resolve_instant("last tuesday")


def test_single_expression_keeps_the_value_type() -> None:
    assert parse_template("${{ inputs.accounts }}").is_single
    assert not parse_template("x ${{ inputs.accounts }}").is_single
