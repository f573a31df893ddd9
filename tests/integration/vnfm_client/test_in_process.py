"""The VNFM client contract, in process: the NFVO's own VNFM called without HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nfvo.vnfm_client import VnfmClient, client_for
from nfvo.vnfm_client.in_process import InProcessVnfmClient
from tests.contract.vnfm_client_contract import VnfmClientContract
from tests.support.celery_worker import LcmLab


class TestInProcessClient(VnfmClientContract):
    @pytest.fixture
    def client(self, lab: LcmLab) -> Iterator[VnfmClient]:
        # The settings' default VNFM is the NFVO's own, in process.
        with client_for(lab.app) as made:
            assert isinstance(made, InProcessVnfmClient)
            yield made
