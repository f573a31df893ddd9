"""The state machine of an NS LCM operation occurrence (ETSI GS NFV-SOL 005, clause 6.6.2.2).

Pure: no I/O. The API, the orchestration workers and the crash recovery ask
:func:`transition` for the next ``operationState`` and store it; :func:`allowed_tasks`
gives the task links of an ``NsLcmOpOcc``; :func:`notification_status` and
:func:`ns_state_after` give what follows from a state.

::

        (task request accepted, "START" notification)
                          |
                          v
                  +--------------+  SUCCEEDED            +----------------------+
        +-------->|  PROCESSING  |---------------------->| COMPLETED *          |
        |         +--------------+  SUCCEEDED_PARTIALLY  +----------------------+
        |                 |       +--------------------->| PARTIALLY_COMPLETED *|
        | RETRY,          | FAILED_STEP, CANCEL,         +----------------------+
        | CONTINUE        v WORKER_LOST
        |         +--------------+         FAIL          +----------------------+
        +---------| FAILED_TEMP  |---------------------->| FAILED *             |
                  +--------------+                       +----------------------+
                     |        ^
            ROLLBACK |        | ROLLBACK_FAILED, CANCEL, WORKER_LOST
                     v        |
                  +--------------+  ROLLBACK_SUCCEEDED   +----------------------+
                  | ROLLING_BACK |---------------------->| ROLLED_BACK *        |
                  +--------------+                       +----------------------+

    * final: COMPLETED, PARTIALLY_COMPLETED, FAILED, ROLLED_BACK

Notes on the standard (SOL005 v3.x NsLcmOperationStateType and clauses 6.4.11-6.4.15):

- Unlike SOL003 there is no STARTING state: an occurrence is created in PROCESSING (the
  NFVO needs no grant from anybody).
- "retry" re-runs the operation from where it stopped; "continue" also resumes it, but
  skips the step that failed, so the operation can only end PARTIALLY_COMPLETED
  ("completed ... with acceptable errors"). Both lead to PROCESSING.
- "cancel" is allowed in PROCESSING and ROLLING_BACK; the task only sets
  ``isCancelPending``, the worker stops at its next step boundary and then applies
  ``Event.CANCEL`` (-> FAILED_TEMP), whatever the cancelMode.
- Which tasks an occurrence offers depends on its state (409 otherwise) and on its
  operation (404 otherwise: the task resource does not exist for that operation).
- START notifications for PROCESSING and ROLLING_BACK, RESULT for the others (FAILED_TEMP
  is an intermediate result).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

__all__ = [
    "CONTINUE_SUPPORTED",
    "FINAL",
    "NS_LCM_OP_TYPES",
    "RETRY_SUPPORTED",
    "ROLLBACK_SUPPORTED",
    "TASKS",
    "TASK_EVENTS",
    "TRANSITIONS",
    "Event",
    "OpState",
    "TaskNotSupported",
    "TransitionRefused",
    "allowed_tasks",
    "is_final",
    "notification_status",
    "ns_state_after",
    "transition",
]


class OpState(StrEnum):
    """NsLcmOperationStateType."""

    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"


FINAL: frozenset[OpState] = frozenset(
    {OpState.COMPLETED, OpState.PARTIALLY_COMPLETED, OpState.FAILED, OpState.ROLLED_BACK}
)
RUNNING: frozenset[OpState] = frozenset({OpState.PROCESSING, OpState.ROLLING_BACK})
"""States in which a worker holds (or is about to hold) the occurrence."""


def is_final(state: OpState | str) -> bool:
    return OpState(state) in FINAL


class Event(StrEnum):
    """What happens to an operation occurrence."""

    SUCCEEDED = "SUCCEEDED"
    SUCCEEDED_PARTIALLY = "SUCCEEDED_PARTIALLY"
    """Every step done, but at least one was skipped by a "continue"."""
    FAILED_STEP = "FAILED_STEP"
    WORKER_LOST = "WORKER_LOST"
    RETRY = "RETRY"
    CONTINUE = "CONTINUE"
    ROLLBACK = "ROLLBACK"
    ROLLBACK_SUCCEEDED = "ROLLBACK_SUCCEEDED"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    FAIL = "FAIL"
    CANCEL = "CANCEL"
    """The cancellation took effect (the worker stopped)."""


_S = OpState
_E = Event

TRANSITIONS: dict[tuple[OpState, Event], OpState] = {
    (_S.PROCESSING, _E.SUCCEEDED): _S.COMPLETED,
    (_S.PROCESSING, _E.SUCCEEDED_PARTIALLY): _S.PARTIALLY_COMPLETED,
    (_S.PROCESSING, _E.FAILED_STEP): _S.FAILED_TEMP,
    (_S.PROCESSING, _E.CANCEL): _S.FAILED_TEMP,
    (_S.PROCESSING, _E.WORKER_LOST): _S.FAILED_TEMP,
    (_S.FAILED_TEMP, _E.RETRY): _S.PROCESSING,
    (_S.FAILED_TEMP, _E.CONTINUE): _S.PROCESSING,
    (_S.FAILED_TEMP, _E.ROLLBACK): _S.ROLLING_BACK,
    (_S.FAILED_TEMP, _E.FAIL): _S.FAILED,
    (_S.ROLLING_BACK, _E.ROLLBACK_SUCCEEDED): _S.ROLLED_BACK,
    (_S.ROLLING_BACK, _E.ROLLBACK_FAILED): _S.FAILED_TEMP,
    (_S.ROLLING_BACK, _E.CANCEL): _S.FAILED_TEMP,
    (_S.ROLLING_BACK, _E.WORKER_LOST): _S.FAILED_TEMP,
}
"""(current state, event) -> next state. A pair not listed is refused."""

NS_LCM_OP_TYPES: tuple[str, ...] = ("INSTANTIATE", "SCALE", "UPDATE", "TERMINATE", "HEAL")
"""NsLcmOpType values."""

RETRY_SUPPORTED: frozenset[str] = frozenset(NS_LCM_OP_TYPES)
"""Every operation is made of recorded, idempotent steps, so every one can be retried."""

ROLLBACK_SUPPORTED: frozenset[str] = frozenset({"INSTANTIATE"})
"""Rollback undoes what the occurrence created (VNF instances, NS virtual links), which
restores the previous state only for an operation that only adds: INSTANTIATE. A
terminated or healed VNF cannot be brought back by deleting things (404 for the others,
as for the VNFM's rollback)."""

CONTINUE_SUPPORTED: frozenset[str] = frozenset({"INSTANTIATE", "TERMINATE", "HEAL"})
"""Operations whose steps are per VNF (or per virtual link), so one can be skipped and the
rest still makes sense: an NS without one of its VNFs, a termination that leaves one VNF
behind, a heal of the other VNFs. SCALE and UPDATE change several VNFs as one decision;
skipping a part would leave an NS at no level the NSD defines."""

TASKS: tuple[str, ...] = ("retry", "rollback", "continue", "fail", "cancel")

TASK_EVENTS: dict[str, Event] = {
    "retry": Event.RETRY,
    "rollback": Event.ROLLBACK,
    "continue": Event.CONTINUE,
    "fail": Event.FAIL,
    "cancel": Event.CANCEL,
}

_OPERATION_SUPPORT: dict[Event, frozenset[str]] = {
    Event.RETRY: RETRY_SUPPORTED,
    Event.ROLLBACK: ROLLBACK_SUPPORTED,
    Event.CONTINUE: CONTINUE_SUPPORTED,
}

_EVENT_WORDS: dict[Event, str] = {
    Event.SUCCEEDED: "completing",
    Event.SUCCEEDED_PARTIALLY: "completing partially",
    Event.FAILED_STEP: "failing temporarily",
    Event.WORKER_LOST: "recovering from a lost worker",
    Event.RETRY: "retry",
    Event.CONTINUE: "continue",
    Event.ROLLBACK: "rollback",
    Event.ROLLBACK_SUCCEEDED: "finishing a rollback",
    Event.ROLLBACK_FAILED: "failing a rollback",
    Event.FAIL: "fail",
    Event.CANCEL: "cancel",
}


class TransitionRefused(Exception):
    """The event is not possible now; ``detail`` is meant for an API user (ProblemDetails)."""

    status: int = 409

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TaskNotSupported(TransitionRefused):
    """The task does not exist for this operation (404)."""

    status = 404


def _ordered(states: Iterable[OpState]) -> list[OpState]:
    order = list(OpState)
    return sorted(states, key=order.index)


def _join(words: list[str], last: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def _check_operation(operation: str) -> None:
    if operation not in NS_LCM_OP_TYPES:
        raise ValueError(f"unknown NsLcmOpType {operation!r}")


def transition(current: OpState | str, event: Event, *, operation: str | None = None) -> OpState:
    """The state after ``event`` in ``current``.

    With ``operation``: a retry, rollback or continue the operation does not support raises
    :class:`TaskNotSupported` (404) whatever the state; any other refusal
    :class:`TransitionRefused` (409).
    """
    current = OpState(current)
    event = Event(event)
    words = _EVENT_WORDS[event]
    if operation is not None:
        _check_operation(operation)
        supported = _OPERATION_SUPPORT.get(event)
        if supported is not None and operation not in supported:
            raise TaskNotSupported(
                f"{words} is not supported for {operation} operations; it is for "
                f"{_join(sorted(supported), 'and')}"
            )
    target = TRANSITIONS.get((current, event))
    if target is not None:
        return target
    allowed = [s.value for s in _ordered(s for (s, ev) in TRANSITIONS if ev is event)]
    detail = f"{words} is only possible in {_join(allowed, 'or')}; this operation is {current}"
    if current in FINAL:
        detail += ", which is final"
    raise TransitionRefused(detail)


def allowed_tasks(state: OpState | str, operation: str) -> set[str]:
    """The task links (retry, rollback, continue, fail, cancel) of the NsLcmOpOcc."""
    _check_operation(operation)
    state = OpState(state)
    tasks: set[str] = set()
    for task, event in TASK_EVENTS.items():
        supported = _OPERATION_SUPPORT.get(event)
        if supported is not None and operation not in supported:
            continue
        if (state, event) in TRANSITIONS:
            tasks.add(task)
    return tasks


NsState = Literal["INSTANTIATED", "NOT_INSTANTIATED"]


def ns_state_after(operation: str, outcome: OpState | str) -> NsState | None:
    """The NsInstance ``nsState`` once ``operation`` ended in ``outcome``; None: unchanged.

    - INSTANTIATE: COMPLETED or PARTIALLY_COMPLETED -> INSTANTIATED (the NS exists, possibly
      without the VNFs a "continue" skipped); ROLLED_BACK or FAILED -> NOT_INSTANTIATED.
      After FAILED, what the operation created may remain; its ``resourceChanges`` list it.
    - TERMINATE: COMPLETED or PARTIALLY_COMPLETED -> NOT_INSTANTIATED (a skipped VNF stays
      on record in the occurrence's error and resourceChanges).
    - the others: unchanged.
    """
    _check_operation(operation)
    outcome = OpState(outcome)
    if outcome not in FINAL:
        return None
    done = outcome in (OpState.COMPLETED, OpState.PARTIALLY_COMPLETED)
    if operation == "INSTANTIATE":
        return "INSTANTIATED" if done else "NOT_INSTANTIATED"
    if operation == "TERMINATE" and done:
        return "NOT_INSTANTIATED"
    return None


def notification_status(state: OpState | str) -> Literal["START", "RESULT"]:
    """START on entering PROCESSING or ROLLING_BACK, RESULT otherwise."""
    return "START" if OpState(state) in RUNNING else "RESULT"
