"""`VnfmClient.change_flavour`, in process and over SOL003 HTTP, against our own VNFM.

Both clients start the VNFM's ChangeVnfFlavour the same way: a refusal is the typed 422
naming the field, an accepted change completes and the instance runs the new flavour.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from nfvo.vnfm_client import Unprocessable, VnfmClient, VnfmRecord, client_for, require_completed
from tests.support.celery_worker import LcmLab
from vnfm.schemas import ChangeVnfFlavourRequest, InstantiateVnfRequest, TerminateVnfRequest

OP_TIMEOUT = 120.0


@pytest.fixture(params=["in-process", "http"])
def client(
    request: pytest.FixtureRequest, lab: LcmLab, nfvo_credentials: tuple[str, str]
) -> Iterator[VnfmClient]:
    if request.param == "in-process":
        with client_for(lab.app) as made:
            yield made
        return
    client_id, secret = nfvo_credentials
    record = VnfmRecord.model_validate(
        {
            "id": "self-http",
            "kind": "http",
            "api_root": lab.url,
            "client_id": client_id,
            "client_secret": SecretStr(secret),
        }
    )
    with client_for(lab.app, record) as made:
        yield made


def test_change_flavour(client: VnfmClient, lab: LcmLab, vnfd_id: str) -> None:
    instance = client.create_vnf_instance(vnfd_id)
    op_id = client.instantiate(instance.id, InstantiateVnfRequest(flavourId="default"))
    require_completed(client.wait_for_op(op_id, OP_TIMEOUT))

    with pytest.raises(Unprocessable) as refused:
        client.change_flavour(instance.id, ChangeVnfFlavourRequest(newFlavourId="huge"))
    assert refused.value.detail.startswith("newFlavourId:")

    op_id = client.change_flavour(instance.id, ChangeVnfFlavourRequest(newFlavourId="large"))
    op = require_completed(client.wait_for_op(op_id, OP_TIMEOUT))
    assert op.operation.value == "CHANGE_FLAVOUR"
    info = client.get_vnf_instance(instance.id).instantiatedVnfInfo
    assert info is not None and info.flavourId == "large"

    terminate = TerminateVnfRequest.model_validate({"terminationType": "FORCEFUL"})
    require_completed(client.wait_for_op(client.terminate(instance.id, terminate), OP_TIMEOUT))
    client.delete_vnf_instance(instance.id)
    assert lab.vim.list_owned(instance.id) == []
