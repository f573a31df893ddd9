"""Typed errors of the NFVO's SOL003 VNFM client, the same for every implementation.

A VNFM refusal carries the SOL013 ProblemDetails it came with; `error_for` picks the class
from the status, so callers branch on the type, never on numbers or texts.
"""

from __future__ import annotations

from typing import Any

from sol013.problem import ProblemDetails, reason_phrase
from vnfm.schemas import VnfLcmOpOcc

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "OperationFailed",
    "PreconditionFailed",
    "Unavailable",
    "Unprocessable",
    "VnfmError",
    "VnfmProtocolError",
    "WaitTimeout",
    "error_for",
]


class VnfmError(Exception):
    """The VNFM refused or failed a request; ``problem`` is its ProblemDetails.

    ``retryable``: the same request may succeed later (the VNFM or the way to it was
    unavailable); nothing else is worth repeating unchanged.
    """

    retryable = False

    def __init__(self, problem: ProblemDetails) -> None:
        super().__init__(f"{problem.status}: {problem.detail}")
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def detail(self) -> str:
        return self.problem.detail


class BadRequest(VnfmError):
    """400: the request is malformed for the VNFM."""


class Forbidden(VnfmError):
    """401/403: the NFVO's credentials are refused or lack a scope."""


class NotFound(VnfmError):
    """404: no such VNF instance, operation occurrence or subscription."""


class Conflict(VnfmError):
    """409: the resource's state does not allow it (an operation is running, wrong state...)."""


class PreconditionFailed(VnfmError):
    """412: the resource changed since it was read."""


class Unprocessable(VnfmError):
    """422: understood but not processable (unknown vnfdId, flavour, external CP...)."""


class Unavailable(VnfmError):
    """503/504 or no connection: the VNFM cannot serve now; the same request may work later."""

    retryable = True


class VnfmProtocolError(VnfmError):
    """The VNFM answered something SOL003 does not allow (a body or header that is not valid)."""


class WaitTimeout(VnfmError):
    """An operation occurrence did not reach a settled state in time; ``op`` is its last state."""

    retryable = True

    def __init__(self, problem: ProblemDetails, op: VnfLcmOpOcc | None) -> None:
        super().__init__(problem)
        self.op = op


class OperationFailed(VnfmError):
    """An operation occurrence ended other than COMPLETED (see `require_completed`).

    ``op`` is the occurrence; ``cause`` its ``error`` as a typed error (an unknown flavour
    is an `Unprocessable`, a refused grant a `Forbidden`, ...).
    """

    def __init__(self, op: VnfLcmOpOcc) -> None:
        error = op.error or {"status": 500, "detail": "the operation failed without an error"}
        self.cause = error_for(int(error["status"]), str(error["detail"]), error)
        problem = ProblemDetails(
            status=self.cause.status,
            detail=f"{op.operation} {op.id} ended {op.operationState}: {self.cause.detail}",
        )
        super().__init__(problem)
        self.op = op


_BY_STATUS: dict[int, type[VnfmError]] = {
    400: BadRequest,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: Unprocessable,
    429: Unavailable,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_for(status: int, detail: str, body: dict[str, Any] | None = None) -> VnfmError:
    """The typed error for a refusal with this status (and ProblemDetails body, if any)."""
    fields = dict(body or {})
    fields.update(status=status, detail=detail)
    fields.setdefault("title", reason_phrase(status))
    problem = ProblemDetails.model_validate(fields)
    return _BY_STATUS.get(status, VnfmError)(problem)
