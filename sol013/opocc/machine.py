"""The state machine of an LCM operation occurrence, given its table.

Pure: no I/O. SOL003 (VnfLcmOpOcc, `vnfm.opocc_states`) and SOL005 (NsLcmOpOcc,
`nfvo.nslcm.opocc_states`) define different states, events and tasks but read them the
same way: a (state, event) pair either leads to one next state or is refused; a task is
offered when its event leaves the current state and the operation supports it; an
instance becomes INSTANTIATED or NOT_INSTANTIATED only when an INSTANTIATE or TERMINATE
ends. :class:`StateMachine` is that reading, built from each side's tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Literal, TypeVar

__all__ = [
    "InstantiationState",
    "StateMachine",
    "TaskNotSupported",
    "TransitionRefused",
]

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)

InstantiationState = Literal["INSTANTIATED", "NOT_INSTANTIATED"]


class TransitionRefused(Exception):
    """The event is not possible now; ``detail`` is meant for an API user (ProblemDetails).

    ``status`` is the HTTP status the API should answer: 409 when the occurrence is in the
    wrong state, 404 (:class:`TaskNotSupported`) when the task does not exist for its
    operation at all.
    """

    status: int = 409

    def __init__(
        self,
        detail: str,
        *,
        current: StrEnum | None = None,
        event: StrEnum | None = None,
        allowed_states: frozenset[StrEnum] = frozenset(),
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.current = current
        self.event = event
        self.allowed_states = allowed_states


class TaskNotSupported(TransitionRefused):
    """The task is not supported for this operation (404: the task resource does not exist)."""

    status = 404


def _join(words: list[str], last: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


@dataclass(frozen=True)
class StateMachine(Generic[S, E]):
    """The transitions of one kind of operation occurrence and what follows from them."""

    states: type[S]
    events: type[E]
    transitions: Mapping[tuple[S, E], S]
    """(current state, event) -> next state. A pair not listed is refused."""
    final: frozenset[S]
    """States no event leaves."""
    running: frozenset[S]
    """States a worker holds the occurrence in; entering one is notified as START."""
    done: frozenset[S]
    """Final states in which the operation did what it was asked (possibly in part)."""
    operation_type: str
    """The name of the operation type in the standard ("LcmOperationType")."""
    operations: tuple[str, ...]
    """Its values."""
    task_events: Mapping[str, E]
    """The task resources of an occurrence and the event each one asks for."""
    event_words: Mapping[E, str]
    """How a refusal names an event ("retry", "completing")."""
    operation_support: Mapping[E, frozenset[str]] = field(default_factory=dict)
    """Events (tasks) only some operations support; the others support every event."""

    def is_final(self, state: S | str) -> bool:
        """True in a final state: nothing can happen to the operation any more."""
        return self.states(state) in self.final

    def _ordered(self, states: Iterable[S]) -> list[S]:
        order = list(self.states)
        return sorted(states, key=order.index)

    def check_operation(self, operation: str) -> None:
        if operation not in self.operations:
            raise ValueError(
                f"unknown {self.operation_type} {operation!r}; expected one of "
                f"{', '.join(self.operations)}"
            )

    def transition(self, current: S | str, event: E | str, *, operation: str | None = None) -> S:
        """The state after ``event`` in state ``current``.

        With ``operation``, the per-operation rules apply too: a task the operation does not
        support raises :class:`TaskNotSupported` (404), before the state is looked at, since
        that task resource does not exist whatever the state. Any other refusal raises
        :class:`TransitionRefused` (409).
        """
        state = self.states(current)
        happened = self.events(event)
        words = self.event_words[happened]
        if operation is not None:
            self.check_operation(operation)
            supported = self.operation_support.get(happened)
            if supported is not None and operation not in supported:
                raise TaskNotSupported(
                    f"{words} is not supported for {operation} operations; it is for "
                    f"{_join(sorted(supported), 'and')}",
                    current=state,
                    event=happened,
                )
        target = self.transitions.get((state, happened))
        if target is not None:
            return target
        allowed = frozenset(s for (s, ev) in self.transitions if ev is happened)
        detail = (
            f"{words} is only possible in "
            f"{_join([s.value for s in self._ordered(allowed)], 'or')}; "
            f"this operation is {state.value}"
        )
        if state in self.final:
            detail += ", which is final"
        raise TransitionRefused(
            detail,
            current=state,
            event=happened,
            allowed_states=frozenset(allowed),
        )

    def task_event(self, state: S | str, task: str, operation: str) -> E:
        """The event ``task`` asks for, if ``operation`` allows it in ``state``.

        TaskNotSupported (404) or TransitionRefused (409, saying in which states it is
        possible) otherwise.
        """
        event = self.task_events[task]
        if task not in self.allowed_tasks(state, operation):
            self.transition(state, event, operation=operation)
            raise TransitionRefused(f"{task} is not possible now")  # pragma: no cover
        return event

    def allowed_tasks(self, state: S | str, operation: str) -> set[str]:
        """The tasks ``operation`` allows in ``state``: the task links of the occurrence."""
        self.check_operation(operation)
        current = self.states(state)
        tasks: set[str] = set()
        for task, event in self.task_events.items():
            supported = self.operation_support.get(event)
            if supported is not None and operation not in supported:
                continue
            if (current, event) in self.transitions:
                tasks.add(task)
        return tasks

    def instantiation_state_after(
        self, operation: str, outcome: S | str
    ) -> InstantiationState | None:
        """The instance's instantiation state once ``operation`` ended in ``outcome``.

        None when the operation leaves it as it was, and for a state that is not final.
        INSTANTIATE: INSTANTIATED when done, NOT_INSTANTIATED otherwise (it never
        completed). TERMINATE: NOT_INSTANTIATED when done, unchanged otherwise. Any other
        operation: unchanged.
        """
        self.check_operation(operation)
        ended = self.states(outcome)
        if ended not in self.final:
            return None
        done = ended in self.done
        if operation == "INSTANTIATE":
            return "INSTANTIATED" if done else "NOT_INSTANTIATED"
        if operation == "TERMINATE" and done:
            return "NOT_INSTANTIATED"
        return None

    def notification_status(self, state: S | str) -> Literal["START", "RESULT"]:
        """notificationStatus of the notification sent on entering ``state``.

        START when the operation (or its retry, or its rollback) starts or proceeds, RESULT
        for a final or an intermediate (FAILED_TEMP) result.
        """
        return "START" if self.states(state) in self.running else "RESULT"
