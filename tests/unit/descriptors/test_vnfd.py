"""The VNFD models: lookups consumers rely on, and immutability."""

from __future__ import annotations

import pydantic
import pytest

from descriptors.vnfd import (
    DeploymentFlavour,
    InstantiationLevel,
    ScalingAspect,
    Vdu,
    VduProfile,
    VduScalingAspectDeltas,
    Vnfd,
)


def vdu(vdu_id: str, role: str) -> Vdu:
    return Vdu.model_validate(
        {
            "id": vdu_id,
            "name": vdu_id,
            "node_type": "tosca.nodes.nfv.Vdu.Compute",
            "role": role,
            "vdu_profile": VduProfile(min_number_of_instances=1, max_number_of_instances=4),
        }
    )


def flavour(**overrides: object) -> DeploymentFlavour:
    fields: dict[str, object] = {
        "flavour_id": "default",
        "description": "d",
        "definitions_file": "Definitions/df.yaml",
        "vdus": [vdu("fp", "fastpath"), vdu("sp", "slowpath")],
        "scaling_aspects": [
            ScalingAspect(id="fastpath", name="fp", description="d", max_scale_level=3)
        ],
        "vdu_scaling_aspect_deltas": [
            VduScalingAspectDeltas(id="x", aspect="fastpath", deltas={"d1": 1}, targets=["fp"])
        ],
        "instantiation_levels": [
            InstantiationLevel(id="small", description="s", vdu_instances={"fp": 1}),
            InstantiationLevel(id="large", description="l", vdu_instances={"fp": 4}),
        ],
        "default_instantiation_level": "small",
    }
    fields.update(overrides)
    return DeploymentFlavour.model_validate(fields)


def test_lookups() -> None:
    f = flavour()
    assert f.vdu("fp").role == "fastpath"
    assert [v.id for v in f.vdus_with_role("slowpath")] == ["sp"]
    assert f.instantiation_level().id == "small"
    assert f.instantiation_level("large").vdu_instances == {"fp": 4}
    assert f.vdu_deltas("fastpath", "fp") == {"d1": 1}
    assert f.vdu_deltas("fastpath", "sp") == {}
    with pytest.raises(KeyError):
        f.vdu("nope")
    with pytest.raises(KeyError):
        f.scaling_aspect("nope")


def test_single_level_is_the_default_when_none_is_named() -> None:
    f = flavour(
        instantiation_levels=[InstantiationLevel(id="only", description="o")],
        default_instantiation_level=None,
    )
    assert f.instantiation_level().id == "only"


def test_models_are_frozen_and_strict() -> None:
    f = flavour()
    with pytest.raises(pydantic.ValidationError):
        f.flavour_id = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        vdu("x", "controlplane")
    with pytest.raises(pydantic.ValidationError):
        DeploymentFlavour.model_validate({**f.model_dump(), "unexpected": 1})


def test_vnfd_flavour_lookup_and_round_trip() -> None:
    vnfd = Vnfd(
        vnfd_id="id",
        vnf_provider="p",
        vnf_product_name="n",
        vnf_software_version="1",
        vnfd_version="1",
        vnfm_info=["x"],
        vnf_node_type="t",
        entry_definitions="Definitions/top.yaml",
        flavours=[flavour()],
    )
    assert vnfd.flavour_ids == ["default"]
    assert vnfd.flavour("default").vdu("fp").vdu_profile.max_number_of_instances == 4
    assert Vnfd.model_validate_json(vnfd.model_dump_json()) == vnfd
