"""The slow path of bench/fastpath.py: the SDK runtime with a trivial forwarding VNF.

Every new flow gets two rules, its own direction and the reverse one, that
only forward (routed by the fast path's FIB); nothing is rewritten. Run as a
unit process (the environment of `bench.fastpath_lab.Lab.start_slowpath`):

    python bench/fastpath_slowpath.py
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vnfs.sdk.config import UnitConfig  # noqa: E402
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, Forward, RuleCounters  # noqa: E402
from vnfs.sdk.slowpath import run  # noqa: E402
from vnfs.sdk.vnf import FastPathInfo, Packet, VnfLogic  # noqa: E402

IDLE_TIMEOUT = 3600
"""longer than a bench run: no rule may age out while it is measured"""


@dataclass
class ForwardLogic(VnfLogic):
    """Forward both directions of every flow; remember the rules per fast path so a
    restarted fast path gets them again."""

    flows: dict[int, dict[FlowKey, FlowRule]] = field(default_factory=dict)
    restored: int = 0

    def on_new_flow(self, packet: Packet) -> Sequence[FlowRule]:
        rules = [
            FlowRule(key, (Forward(),), idle_timeout=IDLE_TIMEOUT)
            for key in (packet.key, packet.key.reversed())
        ]
        table = self.flows.setdefault(packet.fastpath.instance, {})
        for rule in rules:
            table[rule.key] = rule
        return rules

    def on_rules_expired(
        self, fastpath: FastPathInfo, expired: Sequence[ExpiredRule]
    ) -> Sequence[FlowKey]:
        table = self.flows.get(fastpath.instance, {})
        for item in expired:
            table.pop(item.rule.key, None)
        return ()

    def on_fastpath_left(self, fastpath: FastPathInfo) -> None:
        self.flows.pop(fastpath.instance, None)

    def restore(
        self, fastpath: FastPathInfo, rules: Sequence[tuple[FlowRule, RuleCounters]]
    ) -> None:
        table = self.flows.setdefault(fastpath.instance, {})
        for rule, _ in rules:
            table[rule.key] = rule
        self.restored += len(rules)

    def live_rules(self, fastpath: FastPathInfo) -> Sequence[FlowRule]:
        return list(self.flows.get(fastpath.instance, {}).values())


if __name__ == "__main__":
    run(lambda config: ForwardLogic(), UnitConfig)
