"""The NFVO's VNFM client parts that need no VNFM: hub, errors, registry, references, parsing."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from nfvo.vnfm_client import (
    SETTLED,
    Conflict,
    Forbidden,
    NotFound,
    NotificationHub,
    OperationFailed,
    PollPolicy,
    Unavailable,
    Unprocessable,
    VnfmError,
    VnfmProtocolError,
    VnfmRecord,
    require_completed,
)
from nfvo.vnfm_client.callbacks import client_belongs_to, listener_ref, vnfm_of, watch_ref
from nfvo.vnfm_client.errors import error_for
from nfvo.vnfm_client.http import parse_lenient
from vnfm.schemas import (
    VnfIdentifierCreationNotification,
    VnfLcmOperationOccurrenceNotification,
    VnfLcmOpOcc,
)

OP_ID = "7d1c6a6e-0000-4000-8000-000000000001"


def op_notification(state: str, op_id: str = OP_ID) -> VnfLcmOperationOccurrenceNotification:
    body: dict[str, Any] = {
        "id": f"n-{state}-{time.monotonic_ns()}",
        "notificationType": "VnfLcmOperationOccurrenceNotification",
        "subscriptionId": "s-1",
        "timeStamp": "2024-05-01T10:00:00Z",
        "notificationStatus": "RESULT" if state != "PROCESSING" else "START",
        "operationState": state,
        "vnfInstanceId": "i-1",
        "operation": "INSTANTIATE",
        "isAutomaticInvocation": False,
        "verbosity": "SHORT",
        "vnfLcmOpOccId": op_id,
        "_links": {"vnfInstance": {"href": "http://v/i-1"}, "subscription": {"href": "http://v/s"}},
    }
    if state in ("FAILED_TEMP", "FAILED", "ROLLED_BACK"):
        body["error"] = {"status": 422, "detail": "no flavour x"}
    return VnfLcmOperationOccurrenceNotification.model_validate(body)


def op_occ(state: str, error: dict[str, Any] | None = None) -> VnfLcmOpOcc:
    body: dict[str, Any] = {
        "id": OP_ID,
        "operationState": state,
        "stateEnteredTime": "2024-05-01T10:00:00Z",
        "startTime": "2024-05-01T10:00:00Z",
        "vnfInstanceId": "i-1",
        "operation": "INSTANTIATE",
        "isAutomaticInvocation": False,
        "isCancelPending": False,
        "_links": {"self": {"href": "http://v/o"}, "vnfInstance": {"href": "http://v/i"}},
    }
    if error is not None:
        body["error"] = error
    return VnfLcmOpOcc.model_validate(body)


# -- hub ---------------------------------------------------------------------------------------


def test_hub_wakes_a_waiter_with_news_published_after_it_looked() -> None:
    hub = NotificationHub()
    seen = hub.sequence()
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(hub.wait("v", OP_ID, seen, 30.0)))
    waiter.start()
    hub.publish("v", "v.w-0000000000000000", op_notification("COMPLETED"))
    waiter.join(10)
    assert not waiter.is_alive()
    assert result[0] is not None and result[0].state.value == "COMPLETED"
    assert result[0].sequence > seen


def test_hub_does_not_take_old_news_for_new() -> None:
    hub = NotificationHub()
    hub.publish("v", "r", op_notification("FAILED_TEMP"))
    after_retry = hub.sequence()
    # The FAILED_TEMP was before the waiter looked (e.g. before a retry): no news.
    assert hub.wait("v", OP_ID, after_retry, 0.05) is None
    # But a waiter that looked earlier gets it at once.
    news = hub.wait("v", OP_ID, after_retry - 1, 0.05)
    assert news is not None and news.state.value == "FAILED_TEMP"


def test_hub_keys_by_vnfm_and_op() -> None:
    hub = NotificationHub()
    seen = hub.sequence()
    hub.publish("other-vnfm", "r", op_notification("COMPLETED"))
    hub.publish("v", "r", op_notification("COMPLETED", op_id="another-op"))
    assert hub.wait("v", OP_ID, seen, 0.05) is None


def test_hub_forgets_the_oldest_ops_beyond_its_bound() -> None:
    hub = NotificationHub(max_remembered=2)
    for n in range(3):
        hub.publish("v", "r", op_notification("COMPLETED", op_id=f"op-{n}"))
    assert hub.wait("v", "op-0", 0, 0.01) is None
    assert hub.wait("v", "op-2", 0, 0.01) is not None


def test_hub_calls_the_callback_of_the_reference_and_survives_its_bugs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = NotificationHub()
    got: list[Any] = []
    hub.listen("v.l-1", got.append)

    def broken(notification: object) -> None:
        raise RuntimeError("a subscriber's bug")

    hub.listen("v.l-2", broken)
    created = VnfIdentifierCreationNotification.model_validate(
        {
            "id": "n1",
            "notificationType": "VnfIdentifierCreationNotification",
            "subscriptionId": "s",
            "timeStamp": "2024-05-01T10:00:00Z",
            "vnfInstanceId": "i-1",
            "_links": {"vnfInstance": {"href": "h"}, "subscription": {"href": "h"}},
        }
    )
    hub.publish("v", "v.l-1", created)
    with caplog.at_level(logging.ERROR):
        hub.publish("v", "v.l-2", created)
    assert got == [created]
    assert "callback of subscription v.l-2 failed" in caplog.text
    hub.forget("v.l-1")
    hub.publish("v", "v.l-1", created)
    assert got == [created]
    assert hub.received == 3


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, Forbidden, False),
        (403, Forbidden, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (422, Unprocessable, False),
        (503, Unavailable, True),
        (504, Unavailable, True),
        (418, VnfmError, False),
    ],
)
def test_errors_are_typed_by_status(status: int, kind: type[VnfmError], retryable: bool) -> None:
    error = error_for(status, "why", {"title": "T", "status": 0, "instance": "/x", "ext": 1})
    assert type(error) is kind
    assert error.retryable is retryable
    assert (error.status, error.detail, error.problem.title) == (status, "why", "T")
    assert error.problem.model_extra == {"ext": 1}


def test_require_completed_types_the_cause_of_a_failed_operation() -> None:
    done = op_occ("COMPLETED")
    assert require_completed(done) is done
    failed = op_occ("ROLLED_BACK", {"status": 422, "detail": "flavour x: no such flavour"})
    with pytest.raises(OperationFailed) as raised:
        require_completed(failed)
    assert isinstance(raised.value.cause, Unprocessable)
    assert "flavour x" in raised.value.detail and "ROLLED_BACK" in raised.value.detail
    assert raised.value.op is failed


def test_settled_states_are_where_an_occurrence_waits_for_somebody() -> None:
    assert {s.value for s in SETTLED} == {"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"}


def test_poll_policy_is_bounded() -> None:
    with pytest.raises(ValueError):
        PollPolicy(initial=2.0, maximum=1.0)
    with pytest.raises(ValueError):
        PollPolicy(factor=0.5)


# -- registry ----------------------------------------------------------------------------------


def test_a_record_never_shows_its_secret() -> None:
    record = VnfmRecord(
        id="edge",
        kind="http",
        api_root="https://vnfm.example:8443/",
        client_id="nfvo",
        client_secret=SecretStr("s3cret-value"),
    )
    assert "s3cret-value" not in repr(record)
    assert "s3cret-value" not in record.model_dump_json()
    assert "s3cret-value" not in str(record.model_dump())
    assert record.token_endpoint == "https://vnfm.example:8443/oauth2/token"
    assert record.scopes == ("vnflcm:v2:all",)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "http"},
        {"kind": "http", "api_root": "ftp://x"},
        {"kind": "http", "api_root": "http://x", "client_id": "a"},
        {"id": "has space"},
        {"id": "dot.ted"},
    ],
)
def test_records_refuse_what_cannot_be_used(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        VnfmRecord(**fields)


def test_the_default_record_is_the_own_vnfm_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NFVO_VNFM_API_ROOT", raising=False)
    assert VnfmRecord.from_env() == VnfmRecord()
    assert VnfmRecord().kind == "in-process"
    monkeypatch.setenv("NFVO_VNFM_API_ROOT", "https://vnfm.example")
    monkeypatch.setenv("NFVO_VNFM_CLIENT_ID", "nfvo")
    monkeypatch.setenv("NFVO_VNFM_CLIENT_SECRET", "pw")
    monkeypatch.setenv("NFVO_VNFM_VERIFY_TLS", "off")
    record = VnfmRecord.from_env()
    assert (record.kind, record.client_id, record.verify_tls) == ("http", "nfvo", False)
    assert record.client_secret is not None and record.client_secret.get_secret_value() == "pw"


# -- subscription references -------------------------------------------------------------------


def test_references_name_their_vnfm_and_credentials_belong_to_one_reference() -> None:
    watch = watch_ref("edge", "vnfd-1")
    assert watch == watch_ref("edge", "vnfd-1") != watch_ref("edge", "vnfd-2")
    listener = listener_ref("edge")
    assert listener != listener_ref("edge")
    assert vnfm_of(watch) == vnfm_of(listener) == "edge"
    assert vnfm_of("edge") is None and vnfm_of("../x") is None and vnfm_of("e.w-zz") is None
    assert client_belongs_to(f"vnfm-notify.{watch}.0a1b2c3d", watch)
    assert not client_belongs_to(f"vnfm-notify.{watch}.0a1b2c3d", listener)
    assert not client_belongs_to("admin", watch)


# -- parsing what a VNFM sends -----------------------------------------------------------------


def test_attributes_a_newer_vnfm_adds_are_ignored() -> None:
    body = op_occ("COMPLETED").model_dump(mode="json", by_alias=True, exclude_none=True)
    body["vendorExtension"] = {"x": 1}
    body["_links"]["vendorLink"] = {"href": "h"}
    parsed = parse_lenient(VnfLcmOpOcc, body, "VnfLcmOpOcc")
    assert parsed.operationState.value == "COMPLETED"


def test_what_sol003_does_not_allow_is_a_protocol_error() -> None:
    body = op_occ("COMPLETED").model_dump(mode="json", by_alias=True, exclude_none=True)
    body["vendorExtension"] = 1
    del body["operationState"]
    with pytest.raises(VnfmProtocolError) as raised:
        parse_lenient(VnfLcmOpOcc, body, "VnfLcmOpOcc")
    assert "operationState" in raised.value.detail
