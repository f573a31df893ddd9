"""The NAT slow-path process (the VNFD's nat_slowpath command: python -m vnfs.nat.slowpath)."""

from __future__ import annotations

from vnfs.nat.audit import install_sighup
from vnfs.nat.config import NatUnitConfig
from vnfs.nat.logic import NatLogic
from vnfs.sdk.config import ConfigError
from vnfs.sdk.slowpath import run


def nat_logic(config: NatUnitConfig) -> NatLogic:
    """The runtime's logic factory; runs on the main thread, before the event loop."""
    try:
        logic = NatLogic.from_unit(config)
    except OSError as exc:
        raise ConfigError(f"cannot open the NAT audit log {config.nat.audit.path}: {exc}") from None
    install_sighup(logic.audit)
    return logic


if __name__ == "__main__":
    run(nat_logic, NatUnitConfig)
