"""The state machine of a VNF LCM operation occurrence (ETSI GS NFV-SOL 003, clause 5.6.2.2).

Pure: no I/O. The API, the workers and the crash recovery ask :func:`transition` for the
next ``operationState`` and store it; :func:`allowed_tasks` gives the task links of a
``VnfLcmOpOcc``; :func:`notification_status` and :func:`instance_state_after` give what
follows from a state.

::

                           (task request accepted, "START" notification)
                                            |
                                            v
     GRANT_REFUSED, START_FAILED,   +--------------+
     CANCEL, WORKER_LOST            |   STARTING   |
         +--------------------------|              |
         |                          +--------------+
         |                                  | GRANTED (grant given, or none needed)
         |                                  v
         |                          +--------------+  SUCCEEDED   +-------------+
         |                  +------>|  PROCESSING  |------------->| COMPLETED * |
         |                  |       +--------------+              +-------------+
         |                  |               | FAILED_STEP, CANCEL, WORKER_LOST
         |            RETRY |               v
         |                  |       +--------------+     FAIL     +-------------+
         |                  +-------| FAILED_TEMP  |------------->|  FAILED *   |
         |                          +--------------+              +-------------+
         |                             |        ^
         |                    ROLLBACK |        | ROLLBACK_FAILED, CANCEL, WORKER_LOST
         |                             v        |
         |                          +--------------+
         |                          | ROLLING_BACK |
         |                          +--------------+
         |                                  | ROLLBACK_SUCCEEDED
         |                                  v
         |                          +--------------+
         +------------------------->| ROLLED_BACK *|
                                    +--------------+

    * final: COMPLETED, FAILED, ROLLED_BACK (no event leaves them)

Notes on the standard:

- STARTING covers the granting exchange; no resource is touched on the VIM before the
  operation is PROCESSING. Hence everything that ends an operation in STARTING ends it
  ROLLED_BACK: a rejected grant (GRANT_REFUSED), a grant request that failed or timed out
  (START_FAILED), a cancellation (CancelModeType: "put the operation occurrence into the
  ROLLED_BACK state") and a lost worker (WORKER_LOST). The standard has no edge
  STARTING -> FAILED_TEMP; FAILED_TEMP would offer "retry", which would enter PROCESSING
  without a grant.
- CANCEL in PROCESSING or ROLLING_BACK leads to FAILED_TEMP whatever the cancelMode:
  GRACEFUL waits for the resource operations under way on the VIM to finish or time out,
  FORCEFUL cancels them and waits for the cancellation; then the occurrence enters
  FAILED_TEMP. The cancel task itself only sets ``isCancelPending``; the worker applies
  ``Event.CANCEL`` once it has stopped.
- Which tasks an occurrence offers depends on its state (409 otherwise) and on its
  operation (404 otherwise: "the task is not supported for the VNF LCM operation
  occurrence ... the task resource consequently does not exist").
- Each state entered is reported by a VnfLcmOperationOccurrenceNotification:
  notificationStatus START for STARTING, PROCESSING and ROLLING_BACK (clauses 5.4.14.3.1
  and 5.4.15.3.1 call the notifications for retry and rollback "start" notifications),
  RESULT for the final states and for FAILED_TEMP (an intermediate result).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from sol013.opocc.machine import (
    InstantiationState,
    StateMachine,
    TaskNotSupported,
    TransitionRefused,
)

__all__ = [
    "FINAL",
    "LCM_OPERATION_TYPES",
    "MACHINE",
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
    "instance_state_after",
    "is_final",
    "notification_status",
    "transition",
]


class OpState(StrEnum):
    """LcmOperationStateType."""

    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"


FINAL: frozenset[OpState] = frozenset({OpState.COMPLETED, OpState.FAILED, OpState.ROLLED_BACK})
RUNNING: frozenset[OpState] = frozenset(
    {OpState.STARTING, OpState.PROCESSING, OpState.ROLLING_BACK}
)
"""States in which a worker holds (or is about to hold) the occurrence."""


class Event(StrEnum):
    """What happens to an operation occurrence."""

    GRANTED = "GRANTED"
    """The NFVO granted the operation, or it needs no grant: processing starts."""
    GRANT_REFUSED = "GRANT_REFUSED"
    """The NFVO rejected the grant request."""
    START_FAILED = "START_FAILED"
    """The starting phase failed otherwise (grant request error or timeout)."""
    SUCCEEDED = "SUCCEEDED"
    """All steps of the operation are done."""
    FAILED_STEP = "FAILED_STEP"
    """A step of the operation failed."""
    WORKER_LOST = "WORKER_LOST"
    """Recovery: the worker holding the occurrence's lease is gone."""
    RETRY = "RETRY"
    """The retry task."""
    ROLLBACK = "ROLLBACK"
    """The rollback task."""
    ROLLBACK_SUCCEEDED = "ROLLBACK_SUCCEEDED"
    """The rollback is done."""
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    """A step of the rollback failed."""
    FAIL = "FAIL"
    """The fail task."""
    CANCEL = "CANCEL"
    """The cancellation took effect (the worker stopped), either cancelMode."""


_S = OpState
_E = Event

TRANSITIONS: dict[tuple[OpState, Event], OpState] = {
    (_S.STARTING, _E.GRANTED): _S.PROCESSING,
    (_S.STARTING, _E.GRANT_REFUSED): _S.ROLLED_BACK,
    (_S.STARTING, _E.START_FAILED): _S.ROLLED_BACK,
    (_S.STARTING, _E.CANCEL): _S.ROLLED_BACK,
    (_S.STARTING, _E.WORKER_LOST): _S.ROLLED_BACK,
    (_S.PROCESSING, _E.SUCCEEDED): _S.COMPLETED,
    (_S.PROCESSING, _E.FAILED_STEP): _S.FAILED_TEMP,
    (_S.PROCESSING, _E.CANCEL): _S.FAILED_TEMP,
    (_S.PROCESSING, _E.WORKER_LOST): _S.FAILED_TEMP,
    (_S.FAILED_TEMP, _E.RETRY): _S.PROCESSING,
    (_S.FAILED_TEMP, _E.ROLLBACK): _S.ROLLING_BACK,
    (_S.FAILED_TEMP, _E.FAIL): _S.FAILED,
    (_S.ROLLING_BACK, _E.ROLLBACK_SUCCEEDED): _S.ROLLED_BACK,
    (_S.ROLLING_BACK, _E.ROLLBACK_FAILED): _S.FAILED_TEMP,
    (_S.ROLLING_BACK, _E.CANCEL): _S.FAILED_TEMP,
    (_S.ROLLING_BACK, _E.WORKER_LOST): _S.FAILED_TEMP,
}
"""(current state, event) -> next state. A pair not listed is refused."""

LCM_OPERATION_TYPES: tuple[str, ...] = (
    "INSTANTIATE",
    "SCALE",
    "SCALE_TO_LEVEL",
    "CHANGE_FLAVOUR",
    "TERMINATE",
    "HEAL",
    "OPERATE",
    "CHANGE_EXT_CONN",
    "MODIFY_INFO",
    "CREATE_SNAPSHOT",
    "REVERT_TO_SNAPSHOT",
    "CHANGE_VNFPKG",
)
"""LcmOperationType values."""

ROLLBACK_SUPPORTED: frozenset[str] = frozenset({"INSTANTIATE", "CHANGE_FLAVOUR"})
"""Operations whose occurrences offer the rollback task.

SOL003 clause 5.4.15.3.1 makes rollback mandatory only for InstantiateVnf; for any other
operation it is the VNFM's choice, and an unsupported rollback task answers 404. This VNFM
rolls back an INSTANTIATE by deleting what the operation's ``lcm_op_id`` owns on the VIM,
which restores the previous state only for an operation that only adds resources;
TERMINATE and HEAL (and a scale-in) remove resources, which deleting cannot bring back, so
ROLLED_BACK would claim a state that was not restored. A CHANGE_FLAVOUR is rolled back by
converging the VIM on the old flavour again, which the instance's record (rewritten only
when an operation completes) still describes (`vnfm.change_flavour`).
"""

RETRY_SUPPORTED: frozenset[str] = frozenset(LCM_OPERATION_TYPES)
"""Operations whose occurrences offer the retry task: all, as every step is idempotent."""

TASKS: tuple[str, ...] = ("retry", "rollback", "fail", "cancel")
"""The task resources of an "Individual VNF LCM operation occurrence"."""

TASK_EVENTS: dict[str, Event] = {
    "retry": Event.RETRY,
    "rollback": Event.ROLLBACK,
    "fail": Event.FAIL,
    "cancel": Event.CANCEL,
}

_OPERATION_SUPPORT: dict[Event, frozenset[str]] = {
    Event.RETRY: RETRY_SUPPORTED,
    Event.ROLLBACK: ROLLBACK_SUPPORTED,
}

_EVENT_WORDS: dict[Event, str] = {
    Event.GRANTED: "proceeding after the grant",
    Event.GRANT_REFUSED: "ending after a rejected grant",
    Event.START_FAILED: "ending after a failed start",
    Event.SUCCEEDED: "completing",
    Event.FAILED_STEP: "failing temporarily",
    Event.WORKER_LOST: "recovering from a lost worker",
    Event.RETRY: "retry",
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
    done=frozenset({OpState.COMPLETED}),
    operation_type="LcmOperationType",
    operations=LCM_OPERATION_TYPES,
    task_events=TASK_EVENTS,
    event_words=_EVENT_WORDS,
    operation_support=_OPERATION_SUPPORT,
)

is_final = MACHINE.is_final
"""True for COMPLETED, FAILED and ROLLED_BACK: nothing can happen to the operation any more."""


def transition(current: OpState, event: Event, *, operation: str | None = None) -> OpState:
    """The state after ``event`` in state ``current``.

    With ``operation`` (an LcmOperationType value), the per-operation rules apply too: a
    retry or rollback of an operation that does not support it raises
    :class:`TaskNotSupported` (404), before the state is looked at, since that task
    resource does not exist whatever the state. Any other refusal raises
    :class:`TransitionRefused` (409).
    """
    return MACHINE.transition(current, event, operation=operation)


def allowed_tasks(state: OpState, operation: str) -> set[str]:
    """The tasks among retry, rollback, fail and cancel that ``operation`` allows in ``state``.

    These are the task links (``_links.retry`` ...) of the VnfLcmOpOcc.
    """
    return MACHINE.allowed_tasks(state, operation)


def notification_status(state: OpState) -> Literal["START", "RESULT"]:
    """notificationStatus of the VnfLcmOperationOccurrenceNotification sent on entering ``state``.

    START when the operation (or its retry, or its rollback) starts or proceeds: STARTING,
    PROCESSING, ROLLING_BACK. RESULT for a final or intermediate result: COMPLETED,
    FAILED_TEMP, FAILED, ROLLED_BACK.
    """
    return MACHINE.notification_status(state)


def instance_state_after(operation: str, outcome: OpState) -> InstantiationState | None:
    """The VnfInstance ``instantiationState`` once ``operation`` ended in ``outcome``.

    None when the operation leaves it as it was, and for a state that is not final (the
    instantiation state changes only when an operation ends).

    - INSTANTIATE: COMPLETED -> INSTANTIATED. ROLLED_BACK and FAILED -> NOT_INSTANTIATED:
      the instantiation never completed, so the instance has no ``instantiatedVnfInfo``.
      After FAILED, resources the operation created may remain on the VIM (FAILED means
      it "cannot be retried or rolled back"); the occurrence's ``resourceChanges`` list
      them, and they stay owned by its ``lcm_op_id`` for cleanup.
    - TERMINATE: COMPLETED -> NOT_INSTANTIATED. FAILED or ROLLED_BACK (ended in STARTING)
      -> unchanged: the instance is still INSTANTIATED, possibly with fewer resources.
    - any other operation: unchanged.
    """
    return MACHINE.instantiation_state_after(operation, outcome)
