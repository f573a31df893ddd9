"""The SOL003 VNF LCM operation occurrence state machine (vnfm/opocc_states.py)."""

from __future__ import annotations

import itertools

import pytest

from vnfm.opocc_states import (
    FINAL,
    LCM_OPERATION_TYPES,
    ROLLBACK_SUPPORTED,
    TASK_EVENTS,
    TRANSITIONS,
    Event,
    OpState,
    TaskNotSupported,
    TransitionRefused,
    allowed_tasks,
    instance_state_after,
    is_final,
    notification_status,
    transition,
)

S = OpState
E = Event

# Written out here from SOL003 clause 5.6.2.2 and CancelModeType, independently of the
# module's table, so that a change to the table has to be made twice.
EXPECTED: dict[tuple[OpState, Event], OpState] = {
    (S.STARTING, E.GRANTED): S.PROCESSING,
    (S.STARTING, E.GRANT_REFUSED): S.ROLLED_BACK,
    (S.STARTING, E.START_FAILED): S.ROLLED_BACK,
    (S.STARTING, E.CANCEL): S.ROLLED_BACK,
    (S.STARTING, E.WORKER_LOST): S.ROLLED_BACK,
    (S.PROCESSING, E.SUCCEEDED): S.COMPLETED,
    (S.PROCESSING, E.FAILED_STEP): S.FAILED_TEMP,
    (S.PROCESSING, E.CANCEL): S.FAILED_TEMP,
    (S.PROCESSING, E.WORKER_LOST): S.FAILED_TEMP,
    (S.FAILED_TEMP, E.RETRY): S.PROCESSING,
    (S.FAILED_TEMP, E.ROLLBACK): S.ROLLING_BACK,
    (S.FAILED_TEMP, E.FAIL): S.FAILED,
    (S.ROLLING_BACK, E.ROLLBACK_SUCCEEDED): S.ROLLED_BACK,
    (S.ROLLING_BACK, E.ROLLBACK_FAILED): S.FAILED_TEMP,
    (S.ROLLING_BACK, E.CANCEL): S.FAILED_TEMP,
    (S.ROLLING_BACK, E.WORKER_LOST): S.FAILED_TEMP,
}

ALL_PAIRS = list(itertools.product(OpState, Event))
REFUSED_PAIRS = [pair for pair in ALL_PAIRS if pair not in EXPECTED]


def test_table_is_the_expected_one() -> None:
    assert TRANSITIONS == EXPECTED


def test_states_and_final() -> None:
    assert [s.value for s in OpState] == [
        "STARTING",
        "PROCESSING",
        "COMPLETED",
        "FAILED_TEMP",
        "FAILED",
        "ROLLING_BACK",
        "ROLLED_BACK",
    ]
    assert {S.COMPLETED, S.FAILED, S.ROLLED_BACK} == FINAL
    for state in OpState:
        assert is_final(state) is (state in FINAL)
        assert is_final(state.value) is (state in FINAL)


@pytest.mark.parametrize(("current", "event"), list(EXPECTED))
def test_allowed_transition(current: OpState, event: Event) -> None:
    assert transition(current, event) is EXPECTED[(current, event)]


@pytest.mark.parametrize(
    ("current", "event", "operation"),
    [
        (current, event, operation)
        for (current, event) in EXPECTED
        for operation in ("INSTANTIATE", "TERMINATE")
        if event is not E.ROLLBACK or operation in ROLLBACK_SUPPORTED
    ],
)
def test_allowed_transition_with_operation(current: OpState, event: Event, operation: str) -> None:
    assert transition(current, event, operation=operation) is EXPECTED[(current, event)]


def test_every_pair_is_covered() -> None:
    assert len(EXPECTED) + len(REFUSED_PAIRS) == len(OpState) * len(Event) == 84


@pytest.mark.parametrize(("current", "event"), REFUSED_PAIRS)
def test_refused_transition(current: OpState, event: Event) -> None:
    with pytest.raises(TransitionRefused) as info:
        transition(current, event)
    refused = info.value
    assert type(refused) is TransitionRefused
    assert refused.status == 409
    assert refused.current is current
    assert refused.event is event
    allowed = {state for (state, ev) in EXPECTED if ev is event}
    assert refused.allowed_states == allowed
    detail = refused.detail
    assert str(refused) == detail
    # names the asked event, the current state and every state that would allow it
    assert f"this operation is {current.value}" in detail
    assert "is only possible in " in detail
    for state in allowed:
        assert state.value in detail
    assert ("final" in detail) is (current in FINAL)


def test_refusal_details_read_well() -> None:
    with pytest.raises(TransitionRefused) as info:
        transition(S.PROCESSING, E.RETRY)
    assert (
        info.value.detail == "retry is only possible in FAILED_TEMP; this operation is PROCESSING"
    )

    with pytest.raises(TransitionRefused) as info:
        transition(S.COMPLETED, E.CANCEL)
    assert info.value.detail == (
        "cancel is only possible in STARTING, PROCESSING or ROLLING_BACK; "
        "this operation is COMPLETED, which is final"
    )

    with pytest.raises(TransitionRefused) as info:
        transition(S.FAILED_TEMP, E.WORKER_LOST)
    assert info.value.detail == (
        "recovering from a lost worker is only possible in STARTING, PROCESSING or "
        "ROLLING_BACK; this operation is FAILED_TEMP"
    )


def test_no_event_leaves_a_final_state() -> None:
    for state in FINAL:
        for event in Event:
            with pytest.raises(TransitionRefused):
                transition(state, event)


def test_rollback_supported_set() -> None:
    assert sorted(ROLLBACK_SUPPORTED) == ["CHANGE_FLAVOUR", "INSTANTIATE"]
    assert ROLLBACK_SUPPORTED.issubset(LCM_OPERATION_TYPES)


@pytest.mark.parametrize("operation", sorted(set(LCM_OPERATION_TYPES) - ROLLBACK_SUPPORTED))
@pytest.mark.parametrize("current", list(OpState))
def test_rollback_not_supported(operation: str, current: OpState) -> None:
    # 404 whatever the state: the task resource does not exist for this operation
    with pytest.raises(TaskNotSupported) as info:
        transition(current, E.ROLLBACK, operation=operation)
    assert info.value.status == 404
    assert isinstance(info.value, TransitionRefused)
    assert info.value.detail == (
        f"rollback is not supported for {operation} operations; "
        "it is for CHANGE_FLAVOUR and INSTANTIATE"
    )


def test_rollback_supported_but_wrong_state_is_409() -> None:
    with pytest.raises(TransitionRefused) as info:
        transition(S.PROCESSING, E.ROLLBACK, operation="INSTANTIATE")
    assert info.value.status == 409
    assert info.value.detail == (
        "rollback is only possible in FAILED_TEMP; this operation is PROCESSING"
    )


@pytest.mark.parametrize("operation", LCM_OPERATION_TYPES)
def test_retry_fail_cancel_for_every_operation(operation: str) -> None:
    assert transition(S.FAILED_TEMP, E.RETRY, operation=operation) is S.PROCESSING
    assert transition(S.FAILED_TEMP, E.FAIL, operation=operation) is S.FAILED
    assert transition(S.PROCESSING, E.CANCEL, operation=operation) is S.FAILED_TEMP
    # a start that ends early is ROLLED_BACK for any operation, rollback task or not
    assert transition(S.STARTING, E.GRANT_REFUSED, operation=operation) is S.ROLLED_BACK


def test_unknown_operation() -> None:
    with pytest.raises(ValueError, match="unknown LcmOperationType 'REBOOT'"):
        transition(S.FAILED_TEMP, E.FAIL, operation="REBOOT")
    with pytest.raises(ValueError, match="unknown LcmOperationType"):
        allowed_tasks(S.FAILED_TEMP, "instantiate")
    with pytest.raises(ValueError, match="unknown LcmOperationType"):
        instance_state_after("REBOOT", S.COMPLETED)


def test_accepts_plain_strings() -> None:
    assert transition("FAILED_TEMP", "RETRY") is S.PROCESSING  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        transition("DONE", E.RETRY)  # type: ignore[arg-type]


def expected_tasks(state: OpState, operation: str) -> set[str]:
    if state is S.FAILED_TEMP:
        tasks = {"retry", "fail"}
        if operation in ("INSTANTIATE", "CHANGE_FLAVOUR"):
            tasks.add("rollback")
        return tasks
    if state in (S.STARTING, S.PROCESSING, S.ROLLING_BACK):
        return {"cancel"}
    return set()


@pytest.mark.parametrize("operation", LCM_OPERATION_TYPES)
@pytest.mark.parametrize("state", list(OpState))
def test_allowed_tasks(state: OpState, operation: str) -> None:
    assert allowed_tasks(state, operation) == expected_tasks(state, operation)


@pytest.mark.parametrize("operation", LCM_OPERATION_TYPES)
@pytest.mark.parametrize("state", list(OpState))
def test_allowed_tasks_agree_with_transition(state: OpState, operation: str) -> None:
    tasks = allowed_tasks(state, operation)
    for task, event in TASK_EVENTS.items():
        if task in tasks:
            transition(state, event, operation=operation)
        else:
            with pytest.raises(TransitionRefused):
                transition(state, event, operation=operation)


def test_allowed_tasks_examples() -> None:
    assert allowed_tasks(S.FAILED_TEMP, "INSTANTIATE") == {"retry", "rollback", "fail"}
    assert allowed_tasks(S.FAILED_TEMP, "TERMINATE") == {"retry", "fail"}
    assert allowed_tasks(S.FAILED_TEMP, "HEAL") == {"retry", "fail"}
    assert allowed_tasks(S.FAILED_TEMP, "CHANGE_FLAVOUR") == {"retry", "rollback", "fail"}
    assert allowed_tasks(S.ROLLING_BACK, "INSTANTIATE") == {"cancel"}
    assert allowed_tasks(S.COMPLETED, "INSTANTIATE") == set()


INSTANCE_STATE: dict[tuple[str, OpState], str | None] = {
    ("INSTANTIATE", S.COMPLETED): "INSTANTIATED",
    ("INSTANTIATE", S.ROLLED_BACK): "NOT_INSTANTIATED",
    ("INSTANTIATE", S.FAILED): "NOT_INSTANTIATED",
    ("TERMINATE", S.COMPLETED): "NOT_INSTANTIATED",
    ("TERMINATE", S.FAILED): None,
    ("TERMINATE", S.ROLLED_BACK): None,
}


@pytest.mark.parametrize("operation", LCM_OPERATION_TYPES)
@pytest.mark.parametrize("outcome", list(OpState))
def test_instance_state_after(operation: str, outcome: OpState) -> None:
    expected = INSTANCE_STATE.get((operation, outcome))
    if outcome not in FINAL:
        expected = None
    assert instance_state_after(operation, outcome) == expected


def test_instance_state_after_examples() -> None:
    assert instance_state_after("INSTANTIATE", S.COMPLETED) == "INSTANTIATED"
    assert instance_state_after("TERMINATE", S.COMPLETED) == "NOT_INSTANTIATED"
    assert instance_state_after("SCALE", S.COMPLETED) is None
    assert instance_state_after("HEAL", S.FAILED) is None
    assert instance_state_after("INSTANTIATE", S.FAILED_TEMP) is None


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (S.STARTING, "START"),
        (S.PROCESSING, "START"),
        (S.ROLLING_BACK, "START"),
        (S.COMPLETED, "RESULT"),
        (S.FAILED_TEMP, "RESULT"),
        (S.FAILED, "RESULT"),
        (S.ROLLED_BACK, "RESULT"),
    ],
)
def test_notification_status(state: OpState, status: str) -> None:
    assert notification_status(state) == status
    assert notification_status(state.value) == status  # type: ignore[arg-type]


def test_walks() -> None:
    """A few whole lives of an occurrence."""

    def walk(operation: str, *events: Event) -> list[OpState]:
        state = S.STARTING
        seen = [state]
        for event in events:
            state = transition(state, event, operation=operation)
            seen.append(state)
        return seen

    assert walk("INSTANTIATE", E.GRANTED, E.SUCCEEDED)[-1] is S.COMPLETED
    assert walk(
        "INSTANTIATE",
        E.GRANTED,
        E.FAILED_STEP,
        E.RETRY,
        E.WORKER_LOST,
        E.ROLLBACK,
        E.ROLLBACK_FAILED,
        E.ROLLBACK,
        E.ROLLBACK_SUCCEEDED,
    ) == [
        S.STARTING,
        S.PROCESSING,
        S.FAILED_TEMP,
        S.PROCESSING,
        S.FAILED_TEMP,
        S.ROLLING_BACK,
        S.FAILED_TEMP,
        S.ROLLING_BACK,
        S.ROLLED_BACK,
    ]
    assert walk("TERMINATE", E.GRANTED, E.CANCEL, E.FAIL)[-1] is S.FAILED
    assert walk("SCALE", E.CANCEL) == [S.STARTING, S.ROLLED_BACK]
