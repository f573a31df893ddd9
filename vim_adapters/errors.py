"""Typed VIM errors: the VNFM retries the retryable ones and fails the operation on the rest."""

from __future__ import annotations


class VimError(Exception):
    """Any failure of a VIM call; `retryable` says whether the same call may succeed later."""

    retryable = False

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class VimRetryableError(VimError):
    """Timeouts, a busy or unreachable VIM: repeating the (idempotent) call is safe."""

    retryable = True


class VimTimeout(VimRetryableError):
    """Resources did not become ready in time."""


class VimFatalError(VimError):
    """Bad request, quota, missing privilege: repeating the call cannot help."""


class VimNotFound(VimFatalError):
    """The named resource does not exist on this VIM."""


class VimConflict(VimFatalError):
    """The name is taken by a resource with another spec or another owner."""
