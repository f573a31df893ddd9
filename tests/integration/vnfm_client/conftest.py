"""An NFVO+VNFM on a real socket with OAuth 2.0 on, a real LCM worker and a local VIM.

One lab per test module (the contract's tests leave nothing behind, and starting a lab with
its worker takes seconds); the NAT package with trivial units is onboarded once in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.celery_worker import LcmLab, lcm_lab, runnable_nat_csar
from tests.support.local_vim import leftovers, name_prefix

# The NFVO's OAuth 2.0 client at the VNFM (the HTTP client authenticates as it).
NFVO_CLIENT = "nfvo-at-vnfm"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LcmLab]:
    tmp = tmp_path_factory.mktemp("vnfm-client")
    prefix = name_prefix("k")
    with lcm_lab(
        tmp,
        broker_url=None,
        vim_prefix=prefix,
        auth_clients={NFVO_CLIENT: ["vnflcm:v2:all"]},
    ) as made:
        made.start_worker("w1")
        yield made
        assert made.vim.leaks() == []
    assert leftovers(prefix) == []


@pytest.fixture(scope="module")
def nfvo_credentials(lab: LcmLab) -> tuple[str, str]:
    """The NFVO's OAuth 2.0 client id and secret at the VNFM."""
    return NFVO_CLIENT, lab.secrets[NFVO_CLIENT]


@pytest.fixture(scope="module")
def vnfd_id(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> str:
    made = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp_path_factory.mktemp("csar"), vnfd_id=made))
    return made
