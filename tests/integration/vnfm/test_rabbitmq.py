"""RabbitMQ as the production broker: the API dispatches and a real worker consumes over AMQP.

A private rabbitmq-server (tests/support/rabbitmq_server.py) for the session; the NFVO
service in this process and a Celery worker process both get its amqp:// URL, and a
NAT-like VNF (the NAT package running HTTP servers) is instantiated and terminated on the
local VIM. Root (namespaces); the broker listens on loopback only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.celery_worker import lcm_lab, runnable_nat_csar
from tests.support.local_vim import name_prefix
from tests.support.rabbitmq_server import RabbitMqServer, running_rabbitmq
from vnfm import celery_app, planner


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMqServer]:
    with running_rabbitmq() as server:
        yield server


def _queue_depth(url: str, queue: str) -> int:
    """Messages waiting in `queue` on the broker (a passive declare fails if it is not there)."""
    with celery_app.make_app(url).connection_for_write() as connection:
        declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)


def test_instantiate_and_terminate_over_rabbitmq(rabbitmq: RabbitMqServer, tmp_path: Path) -> None:
    with lcm_lab(tmp_path, broker_url=rabbitmq.url, vim_prefix=name_prefix("hb")) as lab:
        vnfd_id = str(uuid.uuid4())
        lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id))
        worker = lab.start_worker("amqp")
        # The worker is on this broker (Celery's banner masks the password).
        assert f"amqp://guest:**@127.0.0.1:{rabbitmq.port}//" in worker.output()

        nat = lab.create_instance(vnfd_id)
        body = {"flavourId": "default", "instantiationLevelId": "small"}
        op_id = lab.start(nat, "instantiate", body)
        op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP")
        assert op["operationState"] == "COMPLETED", op.get("error")
        for vdu in ("nat_fastpath", "nat_slowpath"):
            unit = lab.vim.get_unit(planner.unit_name(nat, vdu))
            assert unit is not None and unit.ready, unit
        assert lab.vim.leaks() == []
        # The occurrence travelled through RabbitMQ: the worker took it off the queue
        # the API published it to.
        assert f"Task {celery_app.RUN_TASK}[" in worker.output()
        assert _queue_depth(rabbitmq.url, "vnflcm") == 0

        op_id = lab.start(nat, "terminate", {"terminationType": "FORCEFUL"})
        op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP")
        assert op["operationState"] == "COMPLETED", op.get("error")
        assert lab.vim.list_owned(nat) == []
        assert lab.vim.leaks() == []
        assert lab.instance(nat)["instantiationState"] == "NOT_INSTANTIATED"
