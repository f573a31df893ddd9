"""The one error type for bad descriptors and packages.

Every check in `descriptors` raises `DescriptorError` with a human-readable
`detail` and, where known, the `location` (a path inside the package, with a
line or a TOSCA node name) so the API can answer with a ProblemDetails that
says what is wrong and where.
"""

from __future__ import annotations


class DescriptorError(Exception):
    """A package or descriptor is invalid; `detail` says why, `location` says where."""

    def __init__(self, detail: str, *, location: str | None = None) -> None:
        self.detail = detail
        self.location = location
        super().__init__(f"{location}: {detail}" if location else detail)
