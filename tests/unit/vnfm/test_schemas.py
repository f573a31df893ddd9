"""SOL003 VNF LCM pydantic models: JSON round trips, the GS's rules, and ETSI schema conformance."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.support import etsi_schema
from vnfm import schemas
from vnfm.schemas import (
    CancelMode,
    ChangeCurrentVnfPkgRequest,
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    CreateVnfRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    LccnSubscription,
    LccnSubscriptionRequest,
    LifecycleChangeNotificationsFilter,
    OperateVnfRequest,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
    VnfIdentifierCreationNotification,
    VnfIdentifierDeletionNotification,
    VnfInfoModificationRequest,
    VnfInstance,
    VnfLcmOperationOccurrenceNotification,
    VnfLcmOpOcc,
)

ROOT = "nfv-sol002-sol003/SOL003"
LCM_DEFS = f"{ROOT}/VNFLifecycleManagement/definitions/SOL003VNFLifecycleManagement_def.yaml"
NOTIFICATION_DEFS = (
    f"{ROOT}/VNFLifecycleManagementNotification/definitions/"
    "SOL003VNFLifecycleManagementNotification_def.yaml"
)

BASE = "http://mano.example/vnflcm/v2"
INSTANCE_ID = "4f1b7c2e-9a51-4d8e-b0a3-6c2f8e1d5a90"
OP_ID = "a1c3e5f7-0b2d-4f6a-8c9e-1d3f5b7a9c0e"
VNFD_ID = "b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"
VIM_ID = "local-lab-vim"


# -- examples ----------------------------------------------------------------------------------


def link(path: str) -> dict[str, str]:
    return {"href": f"{BASE}{path}"}


def resource(resource_id: str) -> dict[str, str]:
    return {"vimConnectionId": "vim1", "resourceId": resource_id, "vimLevelResourceType": "netns"}


EXT_VIRTUAL_LINK = {
    "id": "ext-vl-public",
    "vimConnectionId": "vim1",
    "resourceId": "net-public",
    "extCps": [
        {
            "cpdId": "public_cp",
            "cpConfig": {
                "public_cp-0": {
                    "cpProtocolData": [
                        {
                            "layerProtocol": "IP_OVER_ETHERNET",
                            "ipOverEthernet": {
                                "macAddress": "02:00:c0:a8:64:0a",
                                "ipAddresses": [
                                    {
                                        "type": "IPV4",
                                        "fixedAddresses": ["192.0.2.10"],
                                        "subnetId": "subnet-public",
                                    }
                                ],
                            },
                        }
                    ]
                },
                "public_cp-1": {"linkPortId": "port-7"},
            },
        }
    ],
    "extLinkPorts": [{"id": "port-7", "resourceHandle": resource("veth-7")}],
}

VIM_CONNECTION = {
    "vimId": VIM_ID,
    "vimType": "ETSINFV.LOCAL.V_1",
    "interfaceInfo": {"endpoint": "unix:///run/nfv-mano/vim.sock"},
    "accessInfo": {"project": "lab"},
}

REQUESTS: list[tuple[type[BaseModel], str, dict[str, Any]]] = [
    (
        CreateVnfRequest,
        "CreateVnfRequest",
        {
            "vnfdId": VNFD_ID,
            "vnfInstanceName": "nat-1",
            "vnfInstanceDescription": "NAT for the lab",
            "metadata": {"tenant": "lab"},
        },
    ),
    (
        InstantiateVnfRequest,
        "InstantiateVnfRequest",
        {
            "flavourId": "simple",
            "instantiationLevelId": "small",
            "extVirtualLinks": [EXT_VIRTUAL_LINK],
            "extManagedVirtualLinks": [
                {
                    "id": "emvl-punt",
                    "vnfVirtualLinkDescId": "punt_vl",
                    "vimConnectionId": "vim1",
                    "resourceId": "net-punt",
                    "vnfLinkPort": [
                        {"vnfLinkPortId": "lp-1", "resourceHandle": resource("veth-punt-1")}
                    ],
                }
            ],
            "vimConnectionInfo": {"vim1": VIM_CONNECTION},
            "localizationLanguage": "en-GB",
            "additionalParams": {"publicPortBlock": "1024-65535"},
            "extensions": {"flowIdleTimeout": 30},
            "vnfConfigurableProperties": {"isAutoscaleEnabled": True},
        },
    ),
    (
        ScaleVnfRequest,
        "ScaleVnfRequest",
        {"type": "SCALE_OUT", "aspectId": "fast_path", "numberOfSteps": 2},
    ),
    (
        ScaleVnfToLevelRequest,
        "ScaleVnfToLevelRequest",
        {"scaleInfo": [{"aspectId": "fast_path", "scaleLevel": 3}], "additionalParams": {}},
    ),
    (
        ChangeVnfFlavourRequest,
        "ChangeVnfFlavourRequest",
        {"newFlavourId": "ha", "instantiationLevelId": "large", "extVirtualLinks": []},
    ),
    (
        TerminateVnfRequest,
        "TerminateVnfRequest",
        {"terminationType": "GRACEFUL", "gracefulTerminationTimeout": 60},
    ),
    (
        HealVnfRequest,
        "HealVnfRequest",
        {"cause": "fast path unit lost", "additionalParams": {"vdu": "fast_path"}},
    ),
    (
        OperateVnfRequest,
        "OperateVnfRequest",
        {"changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 10},
    ),
    (
        ChangeExtVnfConnectivityRequest,
        "ChangeExtVnfConnectivityRequest",
        {"extVirtualLinks": [EXT_VIRTUAL_LINK], "vimConnectionInfo": {"vim1": VIM_CONNECTION}},
    ),
    (
        ChangeCurrentVnfPkgRequest,
        "ChangeCurrentVnfPkgRequest",
        {"vnfdId": "c2d8e1f0-5a4b-4c3d-9e8f-7a6b5c4d3e2f", "additionalParams": {"canary": 1}},
    ),
    (
        VnfInfoModificationRequest,
        "VnfInfoModificationRequest",
        {
            "vnfInstanceName": "nat-1-renamed",
            "metadata": {"owner": "ops"},
            "vnfcInfoModifications": [
                {"id": "vnfc-fp-0", "vnfcConfigurableProperties": {"logLevel": "debug"}}
            ],
        },
    ),
    (CancelMode, "CancelMode", {"cancelMode": "GRACEFUL"}),
    (
        LccnSubscriptionRequest,
        "LccnSubscriptionRequest",
        {
            "filter": {
                "vnfInstanceSubscriptionFilter": {
                    "vnfProductsFromProviders": [
                        {
                            "vnfProvider": "nfv-mano lab",
                            "vnfProducts": [
                                {
                                    "vnfProductName": "nat",
                                    "versions": [
                                        {"vnfSoftwareVersion": "1.0", "vnfdVersions": ["1.0"]}
                                    ],
                                }
                            ],
                        }
                    ],
                    "vnfInstanceIds": [INSTANCE_ID],
                },
                "notificationTypes": ["VnfLcmOperationOccurrenceNotification"],
                "operationTypes": ["INSTANTIATE", "SCALE"],
                "operationStates": ["COMPLETED", "FAILED_TEMP"],
            },
            "callbackUri": "http://nfvo.example/callbacks/lccn",
            "authentication": {
                "authType": ["BASIC"],
                "paramsBasic": {"userName": "nfvo", "password": "s3cret"},
            },
            "verbosity": "SHORT",
        },
    ),
]

EXT_CP_PROTOCOL_INFO = {
    "layerProtocol": "IP_OVER_ETHERNET",
    "ipOverEthernet": {
        "macAddress": "02:00:c0:a8:64:0a",
        "ipAddresses": [
            {
                "type": "IPV4",
                "addresses": ["192.0.2.10"],
                "isDynamic": False,
                "subnetId": "subnet-public",
            }
        ],
    },
}

VNF_INSTANCE = {
    "id": INSTANCE_ID,
    "vnfInstanceName": "nat-1",
    "vnfdId": VNFD_ID,
    "vnfProvider": "nfv-mano lab",
    "vnfProductName": "nat",
    "vnfSoftwareVersion": "1.0",
    "vnfdVersion": "1.0",
    "vnfConfigurableProperties": {"isAutoscaleEnabled": True},
    "vimConnectionInfo": {"vim1": {"vimId": VIM_ID, "vimType": "ETSINFV.LOCAL.V_1"}},
    "instantiationState": "INSTANTIATED",
    "instantiatedVnfInfo": {
        "flavourId": "simple",
        "vnfState": "STARTED",
        "scaleStatus": [{"aspectId": "fast_path", "scaleLevel": 1}],
        "maxScaleLevels": [{"aspectId": "fast_path", "scaleLevel": 7}],
        "extCpInfo": [
            {
                "id": "ext-cp-0",
                "cpdId": "public_cp",
                "cpConfigId": "public_cp-0",
                "cpProtocolInfo": [EXT_CP_PROTOCOL_INFO],
                "extLinkPortId": "elp-0",
                "associatedVnfcCpId": "vnfc-fp-0-public",
            }
        ],
        "extVirtualLinkInfo": [
            {
                "id": "ext-vl-public",
                "resourceHandle": resource("net-public"),
                "extLinkPorts": [
                    {
                        "id": "elp-0",
                        "resourceHandle": resource("veth-0"),
                        "cpInstanceId": "ext-cp-0",
                    }
                ],
                "currentVnfExtCpData": EXT_VIRTUAL_LINK["extCps"],
            }
        ],
        "monitoringParameters": [
            {"id": "pps", "name": "packets per second", "performanceMetric": "VNFPacketRate"}
        ],
        "vnfcResourceInfo": [
            {
                "id": "vnfc-fp-0",
                "vduId": "fast_path",
                "computeResource": resource("v4f1b7c2e-fast-path-0"),
                "zoneId": "lab",
                "vnfcCpInfo": [
                    {"id": "vnfc-fp-0-public", "cpdId": "fp_public", "vnfExtCpId": "ext-cp-0"},
                    {
                        "id": "vnfc-fp-0-punt",
                        "cpdId": "fp_punt",
                        "vnfLinkPortId": "lp-punt-0",
                        "cpProtocolInfo": [
                            {
                                "layerProtocol": "IP_OVER_ETHERNET",
                                "ipOverEthernet": {
                                    "ipAddresses": [
                                        {
                                            "type": "IPV6",
                                            "addressRange": {
                                                "minAddress": "fd00::10",
                                                "maxAddress": "fd00::1f",
                                            },
                                        }
                                    ]
                                },
                            }
                        ],
                    },
                ],
                "metadata": {"pid": 4242},
            }
        ],
        "vnfVirtualLinkResourceInfo": [
            {
                "id": "vl-punt",
                "vnfVirtualLinkDescId": "punt_vl",
                "networkResource": resource("v4f1b7c2e-punt-vl"),
                "vnfLinkPorts": [
                    {
                        "id": "lp-punt-0",
                        "resourceHandle": resource("veth-punt-0"),
                        "cpInstanceId": "vnfc-fp-0-punt",
                        "cpInstanceType": "VNFC_CP",
                    }
                ],
            }
        ],
        "virtualStorageResourceInfo": [
            {
                "id": "vs-0",
                "virtualStorageDescId": "flow_table_store",
                "storageResource": resource("tmpfs-0"),
            }
        ],
        "vnfcInfo": [
            {
                "id": "vnfc-fp-0",
                "vduId": "fast_path",
                "vnfcResourceInfoId": "vnfc-fp-0",
                "vnfcState": "STARTED",
            }
        ],
    },
    "metadata": {"tenant": "lab"},
    "extensions": {"flowIdleTimeout": 30},
    "_links": {
        "self": link(f"/vnf_instances/{INSTANCE_ID}"),
        "terminate": link(f"/vnf_instances/{INSTANCE_ID}/terminate"),
        "scale": link(f"/vnf_instances/{INSTANCE_ID}/scale"),
        "heal": link(f"/vnf_instances/{INSTANCE_ID}/heal"),
    },
}

NOT_INSTANTIATED = {
    "id": INSTANCE_ID,
    "vnfdId": VNFD_ID,
    "vnfProvider": "nfv-mano lab",
    "vnfProductName": "nat",
    "vnfSoftwareVersion": "1.0",
    "vnfdVersion": "1.0",
    "instantiationState": "NOT_INSTANTIATED",
    "_links": {
        "self": link(f"/vnf_instances/{INSTANCE_ID}"),
        "instantiate": link(f"/vnf_instances/{INSTANCE_ID}/instantiate"),
    },
}

OP_OCC = {
    "id": OP_ID,
    "operationState": "FAILED_TEMP",
    "stateEnteredTime": "2024-05-01T10:00:07Z",
    "startTime": "2024-05-01T10:00:00Z",
    "vnfInstanceId": INSTANCE_ID,
    "grantId": "grant-1",
    "operation": "SCALE",
    "isAutomaticInvocation": True,
    "operationParams": {"type": "SCALE_OUT", "aspectId": "fast_path", "numberOfSteps": 1},
    "isCancelPending": False,
    "error": {
        "type": "about:blank",
        "status": 500,
        "detail": "worker lost while PROCESSING",
        "workerId": "celery@node1",
    },
    "resourceChanges": {
        "affectedVnfcs": [
            {
                "id": "vnfc-fp-1",
                "vduId": "fast_path",
                "changeType": "ADDED",
                "computeResource": resource("v4f1b7c2e-fast-path-1"),
                "affectedVnfcCpIds": ["vnfc-fp-1-public"],
            }
        ],
        "affectedVirtualLinks": [
            {
                "id": "vl-punt",
                "vnfVirtualLinkDescId": "punt_vl",
                "changeType": "LINK_PORT_ADDED",
                "networkResource": resource("v4f1b7c2e-punt-vl"),
                "vnfLinkPortIds": ["lp-punt-1"],
            }
        ],
        "affectedExtLinkPorts": [
            {
                "id": "elp-1",
                "changeType": "ADDED",
                "extCpInstanceId": "ext-cp-1",
                "resourceHandle": resource("veth-1"),
            }
        ],
        "affectedVirtualStorages": [
            {
                "id": "vs-1",
                "virtualStorageDescId": "flow_table_store",
                "changeType": "TEMPORARY",
                "storageResource": resource("tmpfs-1"),
            }
        ],
    },
    "changedExtConnectivity": [
        {
            "id": "ext-vl-public",
            "resourceHandle": resource("net-public"),
            "currentVnfExtCpData": EXT_VIRTUAL_LINK["extCps"],
        }
    ],
    "warnings": ["slow path did not confirm the rule push"],
    "_links": {
        "self": link(f"/vnf_lcm_op_occs/{OP_ID}"),
        "vnfInstance": link(f"/vnf_instances/{INSTANCE_ID}"),
        "retry": link(f"/vnf_lcm_op_occs/{OP_ID}/retry"),
        "rollback": link(f"/vnf_lcm_op_occs/{OP_ID}/rollback"),
        "fail": link(f"/vnf_lcm_op_occs/{OP_ID}/fail"),
    },
}

MODIFY_OP_OCC = {
    "id": OP_ID,
    "operationState": "COMPLETED",
    "stateEnteredTime": "2024-05-01T10:00:01.250000+02:00",
    "startTime": "2024-05-01T10:00:00+02:00",
    "vnfInstanceId": INSTANCE_ID,
    "operation": "MODIFY_INFO",
    "isAutomaticInvocation": False,
    "isCancelPending": False,
    "changedInfo": {"vnfInstanceName": "nat-1-renamed", "metadata": {"owner": "ops"}},
    "_links": {
        "self": link(f"/vnf_lcm_op_occs/{OP_ID}"),
        "vnfInstance": link(f"/vnf_instances/{INSTANCE_ID}"),
    },
}

LCCN_LINKS = {
    "vnfInstance": link(f"/vnf_instances/{INSTANCE_ID}"),
    "subscription": link("/subscriptions/sub-1"),
    "vnfLcmOpOcc": link(f"/vnf_lcm_op_occs/{OP_ID}"),
}

SUBSCRIPTION = {
    "id": "sub-1",
    "filter": {"notificationTypes": ["VnfIdentifierCreationNotification"]},
    "callbackUri": "http://nfvo.example/callbacks/lccn",
    "verbosity": "FULL",
    "_links": {"self": link("/subscriptions/sub-1")},
}

OCCURRENCE_NOTIFICATION = {
    "id": "n-1",
    "notificationType": "VnfLcmOperationOccurrenceNotification",
    "subscriptionId": "sub-1",
    "timeStamp": "2024-05-01T10:00:09Z",
    "notificationStatus": "RESULT",
    "operationState": "COMPLETED",
    "vnfInstanceId": INSTANCE_ID,
    "operation": "MODIFY_INFO",
    "isAutomaticInvocation": False,
    "verbosity": "FULL",
    "vnfLcmOpOccId": OP_ID,
    "changedInfo": {"vnfInstanceName": "nat-1-renamed"},
    "_links": LCCN_LINKS,
}

CREATION_NOTIFICATION = {
    "id": "n-2",
    "notificationType": "VnfIdentifierCreationNotification",
    "subscriptionId": "sub-1",
    "timeStamp": "2024-05-01T09:59:00Z",
    "vnfInstanceId": INSTANCE_ID,
    "_links": {k: v for k, v in LCCN_LINKS.items() if k != "vnfLcmOpOcc"},
}

DELETION_NOTIFICATION = {
    **CREATION_NOTIFICATION,
    "id": "n-3",
    "notificationType": "VnfIdentifierDeletionNotification",
}

RESOURCES: list[tuple[type[BaseModel], str, str, dict[str, Any]]] = [
    (VnfInstance, LCM_DEFS, "VnfInstance", VNF_INSTANCE),
    (VnfInstance, LCM_DEFS, "VnfInstance", NOT_INSTANTIATED),
    (VnfLcmOpOcc, LCM_DEFS, "VnfLcmOpOcc", OP_OCC),
    (VnfLcmOpOcc, LCM_DEFS, "VnfLcmOpOcc", MODIFY_OP_OCC),
    (LccnSubscription, LCM_DEFS, "LccnSubscription", SUBSCRIPTION),
    (
        VnfLcmOperationOccurrenceNotification,
        NOTIFICATION_DEFS,
        "VnfLcmOperationOccurrenceNotification",
        OCCURRENCE_NOTIFICATION,
    ),
    (
        VnfIdentifierCreationNotification,
        NOTIFICATION_DEFS,
        "VnfIdentifierCreationNotification",
        CREATION_NOTIFICATION,
    ),
    (
        VnfIdentifierDeletionNotification,
        NOTIFICATION_DEFS,
        "VnfIdentifierDeletionNotification",
        DELETION_NOTIFICATION,
    ),
]


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _id(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else ""


# -- round trips and conformance ---------------------------------------------------------------


@pytest.mark.parametrize(("model", "definition", "body"), REQUESTS, ids=_id)
def test_request_round_trip_is_conformant(
    model: type[BaseModel], definition: str, body: dict[str, Any]
) -> None:
    out = dump(model.model_validate(body))
    assert out == body
    etsi_schema.validate(LCM_DEFS, definition, out)


@pytest.mark.parametrize(("model", "document", "definition", "body"), RESOURCES, ids=_id)
def test_resource_round_trip_is_conformant(
    model: type[BaseModel], document: str, definition: str, body: dict[str, Any]
) -> None:
    out = dump(model.model_validate(body))
    assert out == body
    etsi_schema.validate(document, definition, out)


def test_errata_are_needed() -> None:
    """The unpatched ETSI files reject conformant documents, so the errata are real."""
    etsi_schema._load.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delitem(etsi_schema._ERRATA, etsi_schema.SOL003_LCM_DEFS)
            mp.delitem(etsi_schema._ERRATA, etsi_schema.SOL003_DEFS)
            assert etsi_schema.violations(LCM_DEFS, "VnfLcmOpOcc", OP_OCC)
            assert etsi_schema.violations(LCM_DEFS, "VnfInstance", VNF_INSTANCE)
    finally:
        etsi_schema._load.cache_clear()


def test_links_populate_by_name_and_dump_by_alias() -> None:
    occ = VnfLcmOpOcc.model_validate(MODIFY_OP_OCC)
    assert occ.links.self_.href.endswith(OP_ID)
    rebuilt = VnfLcmOpOcc(**{**occ.model_dump(exclude={"links"}), "links": occ.links})
    assert dump(rebuilt) == MODIFY_OP_OCC
    assert "_links" in dump(occ) and "links" not in dump(occ)


def test_api_identity() -> None:
    assert (schemas.API_NAME, schemas.API_MAJOR) == ("vnflcm", "v2")
    assert schemas.API_VERSION == "2.3.0"
    assert {"VnfInstance", "VnfLcmOpOcc", "LccnSubscription"} <= set(schemas.__all__)


def test_scale_defaults_to_one_step() -> None:
    assert ScaleVnfRequest.model_validate({"type": "SCALE_IN", "aspectId": "a"}).numberOfSteps == 1


def test_patch_keeps_explicit_nulls() -> None:
    patch = VnfInfoModificationRequest.model_validate(
        {"vnfInstanceDescription": None, "vimConnectionInfo": {"vim1": None}}
    )
    assert patch.model_dump(exclude_unset=True) == {
        "vnfInstanceDescription": None,
        "vimConnectionInfo": {"vim1": None},
    }


# -- the GS's rules ----------------------------------------------------------------------------


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set to ``value`` (deleted for ...)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out


_FIRST_IP = "extVirtualLinks.0.extCps.0.cpConfig.public_cp-0.cpProtocolData.0.ipOverEthernet"
INSTANTIATE = REQUESTS[1][2]
_EXT_CP = "instantiatedVnfInfo.extCpInfo.0"
_INFO_IP = f"{_EXT_CP}.cpProtocolInfo.0.ipOverEthernet.ipAddresses.0"

INVALID: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (ScaleVnfRequest, {"type": "SCALE_OUT", "aspectId": "a", "numberOfSteps": 0}, "numberOfSteps"),
    (ScaleVnfRequest, {"type": "SCALE_UP", "aspectId": "a"}, "type"),
    (ScaleVnfToLevelRequest, {}, "instantiationLevelId, scaleInfo"),
    (
        ScaleVnfToLevelRequest,
        {"instantiationLevelId": "l", "scaleInfo": [{"aspectId": "a", "scaleLevel": 1}]},
        "instantiationLevelId, scaleInfo",
    ),
    (ScaleVnfToLevelRequest, {"scaleInfo": [{"aspectId": "a", "scaleLevel": -1}]}, "scaleLevel"),
    (
        TerminateVnfRequest,
        {"terminationType": "FORCEFUL", "gracefulTerminationTimeout": 30},
        "gracefulTerminationTimeout",
    ),
    (OperateVnfRequest, {"changeStateTo": "STARTED", "stopType": "FORCEFUL"}, "stopType"),
    (
        OperateVnfRequest,
        {"changeStateTo": "STARTED", "gracefulStopTimeout": 5},
        "gracefulStopTimeout",
    ),
    (
        OperateVnfRequest,
        {"changeStateTo": "STOPPED", "stopType": "GRACEFUL"},
        "gracefulStopTimeout",
    ),
    (OperateVnfRequest, {"changeStateTo": "STOPPED", "gracefulStopTimeout": 5}, "stopType"),
    (HealVnfRequest, {"vnfcInstanceId": ["vnfc-fp-0"]}, "vnfcInstanceId"),
    (VnfInfoModificationRequest, {"vnfdId": None}, "vnfdId"),
    (
        InstantiateVnfRequest,
        _with(INSTANTIATE, "extVirtualLinks.0.extCps.0.cpConfig.public_cp-1", {}),
        "linkPortId, cpProtocolData",
    ),
    (InstantiateVnfRequest, _with(INSTANTIATE, f"{_FIRST_IP}.macAddress", "02:00"), "macAddress"),
    (
        InstantiateVnfRequest,
        _with(_with(INSTANTIATE, f"{_FIRST_IP}.macAddress", ...), f"{_FIRST_IP}.ipAddresses", ...),
        "macAddress, ipAddresses",
    ),
    (
        InstantiateVnfRequest,
        _with(INSTANTIATE, f"{_FIRST_IP}.ipAddresses.0.numDynamicAddresses", 2),
        "fixedAddresses, numDynamicAddresses, addressRange",
    ),
    (
        InstantiateVnfRequest,
        _with(INSTANTIATE, f"{_FIRST_IP}.ipAddresses.0.fixedAddresses", ["2001:db8::1"]),
        "fixedAddresses",
    ),
    (
        InstantiateVnfRequest,
        _with(
            INSTANTIATE,
            "extVirtualLinks.0.extCps.0.cpConfig.public_cp-0.cpProtocolData.0",
            {"layerProtocol": "IP_OVER_ETHERNET"},
        ),
        "ipOverEthernet",
    ),
    (
        LccnSubscriptionRequest,
        {
            "callbackUri": "http://x/",
            "filter": {
                "vnfInstanceSubscriptionFilter": {
                    "vnfdIds": [VNFD_ID],
                    "vnfProductsFromProviders": [{"vnfProvider": "p"}],
                }
            },
        },
        "vnfdIds and vnfProductsFromProviders",
    ),
    (
        LccnSubscriptionRequest,
        {
            "callbackUri": "http://x/",
            "filter": {
                "vnfInstanceSubscriptionFilter": {
                    "vnfInstanceIds": ["i"],
                    "vnfInstanceNames": ["n"],
                }
            },
        },
        "vnfInstanceIds and vnfInstanceNames",
    ),
    (
        LifecycleChangeNotificationsFilter,
        {"notificationTypes": ["VnfIdentifierCreationNotification"], "operationStates": ["FAILED"]},
        "operationStates",
    ),
    (
        LccnSubscriptionRequest,
        {"callbackUri": "http://x/", "authentication": {"authType": ["BASIC"]}},
        "paramsBasic",
    ),
    (VnfInstance, _with(VNF_INSTANCE, "instantiatedVnfInfo", ...), "instantiatedVnfInfo"),
    (
        VnfInstance,
        _with(VNF_INSTANCE, f"{_EXT_CP}.associatedVipCpId", "vip-0"),
        "associatedVnfcCpId, associatedVipCpId, associatedVnfVirtualLinkId",
    ),
    (VnfInstance, _with(VNF_INSTANCE, "instantiatedVnfInfo.extCpInfo", []), "extCpInfo"),
    (VnfInstance, _with(VNF_INSTANCE, f"{_INFO_IP}.isDynamic", ...), "isDynamic"),
    (
        VnfInstance,
        _with(
            VNF_INSTANCE,
            f"{_INFO_IP}.addressRange",
            {"minAddress": "192.0.2.20", "maxAddress": "192.0.2.29"},
        ),
        "addresses, addressRange",
    ),
    (
        VnfInstance,
        _with(
            VNF_INSTANCE,
            "instantiatedVnfInfo.vnfVirtualLinkResourceInfo.0.vnfLinkPorts.0.cpInstanceType",
            ...,
        ),
        "cpInstanceType",
    ),
    (VnfInstance, _with(VNF_INSTANCE, "_links", {}), "self"),
    (VnfLcmOpOcc, _with(OP_OCC, "error", ...), "error"),
    (VnfLcmOpOcc, _with(OP_OCC, "error", {"status": 500}), "detail"),
    (VnfLcmOpOcc, _with(OP_OCC, "isCancelPending", True), "cancelMode"),
    (VnfLcmOpOcc, _with(OP_OCC, "startTime", "2024-05-01T10:00:00"), "startTime"),
    (
        VnfLcmOpOcc,
        _with(MODIFY_OP_OCC, "modificationsTriggeredByVnfPkgChange", {"vnfdId": VNFD_ID}),
        "changedInfo and modificationsTriggeredByVnfPkgChange",
    ),
    (
        VnfLcmOpOcc,
        _with(
            _with(MODIFY_OP_OCC, "changedInfo", ...),
            "modificationsTriggeredByVnfPkgChange",
            {"vnfdId": VNFD_ID},
        ),
        "modificationsTriggeredByVnfPkgChange",
    ),
    (
        VnfLcmOperationOccurrenceNotification,
        _with(OCCURRENCE_NOTIFICATION, "operationState", "FAILED"),
        "error",
    ),
    (
        VnfLcmOperationOccurrenceNotification,
        _with(OCCURRENCE_NOTIFICATION, "verbosity", "SHORT"),
        "changedInfo",
    ),
    (
        VnfLcmOperationOccurrenceNotification,
        _with(OCCURRENCE_NOTIFICATION, "notificationType", "VnfIdentifierCreationNotification"),
        "notificationType",
    ),
]


@pytest.mark.parametrize(("model", "body", "names"), INVALID, ids=_id)
def test_rule_violation_names_the_field(
    model: type[BaseModel], body: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    assert names in str(raised.value)


@pytest.mark.parametrize(("model", "definition", "body"), REQUESTS, ids=_id)
def test_unknown_request_field_is_refused(
    model: type[BaseModel], definition: str, body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate({**body, "flavorId": "typo"})
    errors = raised.value.errors()
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", ("flavorId",))]


def test_unknown_nested_field_is_refused() -> None:
    body = _with(INSTANTIATE, "extVirtualLinks.0.resourceID", "net-x")
    with pytest.raises(ValidationError) as raised:
        InstantiateVnfRequest.model_validate(body)
    assert raised.value.errors()[0]["loc"] == ("extVirtualLinks", 0, "resourceID")


def test_operate_stop_without_type_is_forceful_and_valid() -> None:
    request = OperateVnfRequest.model_validate({"changeStateTo": "STOPPED"})
    assert request.stopType is None and request.gracefulStopTimeout is None
