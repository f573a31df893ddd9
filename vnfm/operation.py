"""What an LCM operation occurrence is to the code that runs it, and how a run ends.

The worker builds an `OperationContext` from the stored occurrence and its instance
(`OccurrenceService.context`), the executor turns it into an `OperationResult` or raises
`ExecutionError`, and `OccurrenceService.apply` stores the result on the occurrence and the
instance. These types are that contract; they hold no behaviour of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = [
    "Cancelled",
    "ExecutionError",
    "InfoModifications",
    "OperationContext",
    "OperationResult",
    "parse_request",
]

_T = TypeVar("_T", bound=BaseModel)


def _never() -> bool:
    return False


@dataclass(frozen=True)
class OperationContext:
    """One LCM operation occurrence as the executor needs it."""

    op_id: str
    operation: str
    """LcmOperationType value: INSTANTIATE, SCALE, ..., CHANGE_EXT_CONN, CHANGE_FLAVOUR, ..."""
    vnf_instance_id: str
    vnfd_id: str
    params: dict[str, Any]
    """The task's request body as JSON (InstantiateVnfRequest, ScaleVnfRequest, ...)."""
    flavour_id: str | None = None
    """Set exactly when the instance is INSTANTIATED."""
    scale_levels: dict[str, int] = field(default_factory=dict)
    instantiation_level_id: str | None = None
    cancel_requested: Callable[[], bool] = _never
    vnf_state: str | None = None
    """VnfOperationalStateType of an instantiated VNF (STARTED, STOPPED); None otherwise."""
    ext_virtual_links: list[dict[str, Any]] = field(default_factory=list)
    """The instance's ExtVirtualLinkInfo entries (JSON) as they are before the operation."""
    vim_connection_info: dict[str, Any] = field(default_factory=dict)
    """The instance's vimConnectionInfo (JSON) as it is before the operation."""
    vim_connection_id: str | None = None
    """The VIM connection the instance's resources are on (their ResourceHandles name it);
    None when it has none (not instantiated)."""
    instantiated_info: dict[str, Any] = field(default_factory=dict)
    """The instance's InstantiatedVnfInfo (JSON) as stored before the operation; empty when
    it is not instantiated. A CHANGE_FLAVOUR reads what it changes from (and what its
    rollback puts back) here: the instance is rewritten only when an operation completes."""
    additional_params: dict[str, Any] = field(default_factory=dict)
    """The additionalParams of the request that set the instance's flavour (its INSTANTIATE
    or its last CHANGE_FLAVOUR): what its units' configuration was planned with."""


@dataclass(frozen=True)
class InfoModifications:
    """What a MODIFY_INFO changes on the VNF instance resource itself.

    Applied by `vnfm.modify_info.apply_modifications` to the stored instance in the same
    transaction that completes the occurrence, so the merge patches meet the current values.
    """

    patch: dict[str, Any]
    """VnfInfoModificationRequest JSON as requested, explicit nulls kept (they remove)."""
    package: Mapping[str, str] | None = None
    """With a new vnfdId: vnfPkgId, vnfProvider, vnfProductName, vnfSoftwareVersion,
    vnfdVersion of the package it belongs to (copied to the instance)."""


@dataclass(frozen=True)
class OperationResult:
    """What the caller stores on the VNF instance and the op occurrence when `run` succeeds.

    `instantiation_state` None means the operation leaves the instance's instantiation
    (state, flavour, levels, vnfState, instantiatedVnfInfo) as it is (MODIFY_INFO).
    """

    instantiation_state: str | None = None
    flavour_id: str | None = None
    scale_levels: dict[str, int] = field(default_factory=dict)
    vnf_state: str | None = None
    instantiated_info: dict[str, Any] | None = None
    """InstantiatedVnfInfo JSON (ETSI names, no nulls); None when NOT_INSTANTIATED."""
    resource_changes: dict[str, Any] = field(default_factory=dict)
    """ResourceChanges JSON of the op occurrence."""
    changed_info: dict[str, Any] | None = None
    """VnfInfoModifications JSON of the op occurrence; for MODIFY_INFO it is computed when
    `modifications` are applied, from the values they actually changed."""
    instantiation_level_id: str | None = None
    """The level the instance is at after INSTANTIATE (the default one if none was asked)."""
    modifications: InfoModifications | None = None
    """Changes to the instance resource's own attributes (MODIFY_INFO; the
    vimConnectionInfo of CHANGE_EXT_CONN)."""
    changed_ext_connectivity: list[dict[str, Any]] | None = None
    """ExtVirtualLinkInfo JSON of the external links a CHANGE_EXT_CONN changed."""


class ExecutionError(Exception):
    """A step failed; `status` and `detail` go into the op occurrence's ProblemDetails."""

    def __init__(self, detail: str, *, status: int = 500, retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retryable = retryable


class Cancelled(ExecutionError):
    """The operation was cancelled between two steps; what was done so far stays."""

    def __init__(self, detail: str) -> None:
        # Retryable: every step is idempotent, so a retry continues where this stopped.
        super().__init__(detail, status=409, retryable=True)


def parse_request(model: type[_T], params: Mapping[str, Any], what: str) -> _T:
    """The stored request body as its SOL003 type; ExecutionError 422 naming the bad fields."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ExecutionError(f"invalid {what}: {problems}", status=422) from None
