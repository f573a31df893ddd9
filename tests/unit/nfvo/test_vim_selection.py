"""Which registered VIM a VNF LCM operation acts on (`vnfm.targets.vim_of`, `check_vim`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from nfvo.vims.directory import RegisteredVims
from nfvo.vims.schemas import VimRegistrationRequest
from nfvo.vims.service import VimRegistry
from sol013.secrets import SecretBox
from store.base import make_engine, make_session_factory
from store.migrate import upgrade
from vnfm.operation import ExecutionError, OperationContext
from vnfm.schemas import InstantiateVnfRequest
from vnfm.targets import VimSelection, check_vim, select_vim, vim_of

LOCAL = "NFVMANO.LOCAL.V_1"


def conn(vim_id: str | None, vim_type: str = LOCAL) -> dict[str, Any]:
    return {"vimType": vim_type} if vim_id is None else {"vimId": vim_id, "vimType": vim_type}


def requested(**entries: dict[str, Any]) -> Any:
    body = InstantiateVnfRequest.model_validate({"flavourId": "f", "vimConnectionInfo": entries})
    return body.vimConnectionInfo


def refused(*args: Any) -> str:
    with pytest.raises(ExecutionError) as caught:
        select_vim(*args)
    assert caught.value.status == 422
    return caught.value.detail


def test_an_instantiate_names_its_vim_or_takes_the_instances() -> None:
    assert select_vim(requested(b=conn("vim-b")), {}, None) == VimSelection(
        "b", "vim-b", LOCAL, "vimConnectionInfo.b"
    )
    # The request's connection wins over those the instance already has.
    known = {"a": conn("vim-a"), "c": conn("vim-c")}
    assert select_vim(requested(b=conn("vim-b")), known, None).vim_id == "vim-b"
    assert select_vim(None, {"a": conn("vim-a")}, None).vim_id == "vim-a"
    default = select_vim(None, {}, None)
    assert (default.connection_id, default.vim_id) == ("local", None)
    assert "names 2 VIMs (a, b)" in refused(requested(a=conn("x"), b=conn("y")), {}, None)
    assert "has 2 VIM connections (a, c)" in refused(None, known, None)
    assert "vimConnectionInfo.a.vimId is required" in refused(requested(a=conn(None)), {}, None)


def test_later_operations_use_the_connection_of_the_resources() -> None:
    known = {"a": conn("vim-a"), "b": conn("vim-b")}
    assert select_vim(None, known, "b").vim_id == "vim-b"
    # An instance made before the registry: its resources are on "local", which it does not
    # list; a connection CHANGE_EXT_CONN added since does not move it.
    old = select_vim(None, {"lab-b": conn("lab-b")}, "local")
    assert (old.connection_id, old.vim_id) == ("local", None)


@pytest.fixture
def vims(database_url: str, tmp_path: Path) -> Iterator[RegisteredVims]:
    engine = make_engine(database_url)
    upgrade(engine)
    registry = VimRegistry(make_session_factory(engine), SecretBox([Fernet.generate_key()]))
    registry.ensure_default(tmp_path / "default", "nfv")
    try:
        yield RegisteredVims(registry)
    finally:
        engine.dispose()


def test_checked_against_the_registry(vims: RegisteredVims, tmp_path: Path) -> None:
    lab_b = vims.registry.create(
        VimRegistrationRequest(
            name="lab-b",
            vimType=LOCAL,
            accessInfo={"stateDir": str(tmp_path / "b"), "prefix": "labb"},
        )
    ).id
    assert check_vim(select_vim(requested(b=conn(lab_b)), {}, None), vims) == (lab_b, LOCAL)
    assert check_vim(select_vim(None, {}, None), vims) == ("local", LOCAL)
    for selection, says in (
        (
            select_vim(requested(x=conn("nope")), {}, None),
            "vimConnectionInfo.x.vimId: no VIM with id 'nope' is registered",
        ),
        (
            select_vim(requested(x=conn(lab_b, "ETSINFV.KUBERNETES.V_1")), {}, None),
            f"vimConnectionInfo.x.vimType: VIM {lab_b} is of type {LOCAL}, not ETSINFV.KUB",
        ),
        (
            select_vim(None, {"e": conn("gone")}, "e"),
            "the VNF instance's vimConnectionInfo.e.vimId: no VIM with id 'gone'",
        ),
    ):
        with pytest.raises(ExecutionError) as caught:
            check_vim(selection, vims)
        assert caught.value.status == 422 and says in caught.value.detail


def test_vim_of_an_occurrence() -> None:
    def ctx(operation: str, params: dict[str, Any], **fields: Any) -> OperationContext:
        return OperationContext(
            op_id="op", operation=operation, vnf_instance_id="i", vnfd_id="d", params=params,
            **fields,
        )  # fmt: skip

    instantiate = {"flavourId": "f", "vimConnectionInfo": {"b": conn("vim-b")}}
    assert vim_of(ctx("INSTANTIATE", instantiate)).vim_id == "vim-b"
    # Other operations' bodies carry no VIM choice: the instance's resources say it.
    scale = ctx(
        "SCALE",
        {"type": "SCALE_OUT", "aspectId": "a"},
        vim_connection_info={"b": conn("vim-b"), "c": conn("vim-c")},
        vim_connection_id="c",
    )
    assert vim_of(scale).vim_id == "vim-c"
    with pytest.raises(ExecutionError, match="invalid InstantiateVnfRequest"):
        vim_of(ctx("INSTANTIATE", {"vimConnectionInfo": {}}))
