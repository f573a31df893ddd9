"""Run host commands (ip, CNI plugins, ...) with a deadline, turning failures into VimErrors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from vim_adapters.errors import VimFatalError, VimRetryableError

# The Debian package to name when a binary is missing, so the operator knows what to install.
_PACKAGES = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "tc": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "ping": "iputils-ping",
    "nft": "nftables",
    "podman": "podman",
}
_CNI_PACKAGE = "containernetworking-plugins"


def package_for(binary: str) -> str | None:
    """The Debian package that ships `binary` (a name or a path), if we know it."""
    if "/cni/" in binary:
        return _CNI_PACKAGE
    return _PACKAGES.get(os.path.basename(binary))


def run(
    argv: Sequence[str],
    *,
    timeout: float = 10.0,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv and capture its output.

    A missing binary is fatal (nothing will install it between retries); running past
    `timeout` is retryable, since the command is killed and callers repeat idempotent steps.
    With `check`, a non-zero exit raises VimFatalError carrying the command's stderr.
    """
    if not argv:
        raise ValueError("empty argv")
    try:
        completed = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError:
        package = package_for(argv[0])
        hint = f" (install the Debian package {package})" if package else ""
        raise VimFatalError(f"{argv[0]} not found{hint}") from None
    except PermissionError as exc:
        raise VimFatalError(f"cannot execute {argv[0]}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise VimRetryableError(f"{_show(argv)} did not finish within {timeout:g} s") from None
    if check and completed.returncode != 0:
        raise VimFatalError(
            f"{_show(argv)} failed (exit {completed.returncode}): {_text(completed.stderr)}"
        )
    return completed


def _show(argv: Sequence[str]) -> str:
    return " ".join(argv)


def _text(output: bytes) -> str:
    return output.decode(errors="replace").strip() or "(no output)"
