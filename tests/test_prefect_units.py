"""The small pieces behind the Prefect integration, without a server: names, keys, the approval
form's text, masking of records from any library (log lines themselves: ``tests/test_logs.py``)."""

from __future__ import annotations

import logging

import pytest

from tourniquet.engine.run import ApprovalRequest
from tourniquet.flows.approval import ApprovalInput, describe_request, step_timeout, waiting_time
from tourniquet.flows.artifacts import artifact_key
from tourniquet.flows.events import account_event_name
from tourniquet.flows.respond import respond
from tourniquet.logs import configure_logging, mask_record
from tourniquet.secrets import register_secret


def test_event_names_say_what_happened_to_the_account() -> None:
    assert account_event_name("lock") == "tourniquet.account.locked"
    assert account_event_name("end_sessions") == "tourniquet.account.sessions-ended"
    assert account_event_name("Revoke OTP") == "tourniquet.account.revoke-otp"


@pytest.mark.parametrize("incident, key", [
    ("inc-20261129-abcd1234", "tourniquet-inc-20261129-abcd1234-report"),
    ("INC_42 (ARS)", "tourniquet-inc-42-ars-report"),
])
def test_artifact_keys_are_lowercase_digits_and_dashes(incident: str, key: str) -> None:
    assert artifact_key(incident, "report") == key


def test_the_approval_form_lists_every_account_and_says_a_timeout_is_a_no() -> None:
    request = ApprovalRequest(incident="inc-1", playbook="credential-misuse", step="lock", reason="3 accounts exceed "
                              "the limit of 2", accounts=["adupont", "bmartin", "cpetit"], limit=2, timeout_seconds=3600)
    text = describe_request(request)
    assert all(f"`{uid}`" in text for uid in request.accounts)
    assert "counts as a rejection" in text
    schema = ApprovalInput.with_initial_data(description=text).model_json_schema()
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert schema["properties"]["decision"]["default"] == "reject", "doing nothing must be the default"
    assert "approver" in schema["required"]


def test_an_approval_never_waits_past_its_step_timeout() -> None:
    assert waiting_time(3600) == 3600
    with step_timeout(300):
        assert waiting_time(3600) == 295


def test_the_respond_form_has_a_description_for_every_parameter() -> None:
    """Prefect builds the deployment form from the docstring's Args, not from Annotated Field descriptions."""
    properties = respond.parameters.properties
    assert set(properties) == {"accounts", "reason", "since", "dry_run", "playbook", "incident", "site",
                               "wait_for_approval", "alert_time"}
    assert all(p.get("description") for p in properties.values())


def test_records_from_any_library_are_masked_when_created() -> None:
    configure_logging()
    register_secret("s3cret-bind-pw")
    record = logging.getLogger("ldap3").makeRecord("ldap3", logging.ERROR, __file__, 1, "bind %s failed", ("s3cret-bind-pw",), None)
    assert mask_record(record).getMessage() == "bind *** failed"
    created = logging.LogRecord("httpx", logging.INFO, __file__, 1, "url ?pw=%s", ("s3cret-bind-pw",), None)
    factory_made = logging.getLogRecordFactory()("httpx", logging.INFO, __file__, 1, "url ?pw=%s", ("s3cret-bind-pw",), None)
    assert "s3cret" in created.getMessage() and factory_made.getMessage() == "url ?pw=***"
