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

from enum import StrEnum

from sol013.opocc.machine import (
    InstantiationState,
    StateMachine,
    TaskNotSupported,
    TransitionRefused,
)

__all__ = [
    "CONTINUE_SUPPORTED",
    "FINAL",
    "MACHINE",
    "NS_LCM_OP_TYPES",
    "RETRY_SUPPORTED",
    "ROLLBACK_SUPPORTED",
    "RUNNING",
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


MACHINE: StateMachine[OpState, Event] = StateMachine(
    states=OpState,
    events=Event,
    transitions=TRANSITIONS,
    final=FINAL,
    running=RUNNING,
    done=frozenset({OpState.COMPLETED, OpState.PARTIALLY_COMPLETED}),
    operation_type="NsLcmOpType",
    operations=NS_LCM_OP_TYPES,
    task_events=TASK_EVENTS,
    event_words=_EVENT_WORDS,
    operation_support=_OPERATION_SUPPORT,
)

is_final = MACHINE.is_final
transition = MACHINE.transition
"""The state after an event. With ``operation``: a retry, rollback or continue the operation
does not support raises TaskNotSupported (404) whatever the state; any other refusal
TransitionRefused (409)."""
allowed_tasks = MACHINE.allowed_tasks
"""The task links (retry, rollback, continue, fail, cancel) of the NsLcmOpOcc."""
notification_status = MACHINE.notification_status
"""START on entering PROCESSING or ROLLING_BACK, RESULT otherwise."""

NsState = InstantiationState


def ns_state_after(operation: str, outcome: OpState | str) -> NsState | None:
    """The NsInstance ``nsState`` once ``operation`` ended in ``outcome``; None: unchanged.

    - INSTANTIATE: COMPLETED or PARTIALLY_COMPLETED -> INSTANTIATED (the NS exists, possibly
      without the VNFs a "continue" skipped); ROLLED_BACK or FAILED -> NOT_INSTANTIATED.
      After FAILED, what the operation created may remain; its ``resourceChanges`` list it.
    - TERMINATE: COMPLETED or PARTIALLY_COMPLETED -> NOT_INSTANTIATED (a skipped VNF stays
      on record in the occurrence's error and resourceChanges).
    - the others: unchanged.
    """
    return MACHINE.instantiation_state_after(operation, outcome)
