"""Validate JSON documents against the data types of the official ETSI NFV OpenAPI files.

The ETSI files keep their data types under ``definitions:`` in YAML files that point at each
other with relative ``$ref``s (``../../definitions/SOL005_def.yaml#/definitions/Identifier``).
Every file is loaded from disk by its ``file:`` URI through a ``referencing`` registry, so those
references resolve exactly as written, and ``jsonschema`` does the validation.

The files are looked up in ``$ETSI_OPENAPI_DIR`` or, by default, in ``shared/etsi-openapi``
next to the repository (the CI layout). When they are missing, validation fails: CI always has
them, so a silent skip would hide a broken checkout.

A few known errors in the ETSI files themselves are corrected in ``_ERRATA``, each narrowly and
with the clause of the GS that the correction follows.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ENV_VAR = "ETSI_OPENAPI_DIR"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO.parent / "shared" / "etsi-openapi"

# The files the VNF package management conformance tests use.
VNFPKGM_DEFS = (
    "nfv-sol005/SOL005/VNFPackageManagement/definitions/SOL005VNFPackageManagement_def.yaml"
)
VNFPKGM_NOTIFICATION_DEFS = (
    "nfv-sol005/SOL005/VNFPackageManagementNotification/definitions/"
    "SOL005VNFPackageManagementNotification_def.yaml"
)
SOL005_DEFS = "nfv-sol005/SOL005/definitions/SOL005_def.yaml"
# The files the NSD management conformance tests use.
NSD_DEFS = "nfv-sol005/SOL005/NSDManagement/definitions/SOL005NSDescriptorManagement_def.yaml"
NSD_NOTIFICATION_DEFS = (
    "nfv-sol005/SOL005/NSDManagementNotification/definitions/"
    "SOL005NSDescriptorManagementNotification_def.yaml"
)
# The files the NS lifecycle management tests use.
NSLCM_DEFS = (
    "nfv-sol005/SOL005/NSLifecycleManagement/definitions/SOL005NSLifecycleManagement_def.yaml"
)
NSLCM_NOTIFICATION_DEFS = (
    "nfv-sol005/SOL005/NSLifecycleManagementNotification/definitions/"
    "SOL005NSLifecycleManagementNotification_def.yaml"
)

# Long instances make jsonschema's messages unreadable; keep each violation to one line.
_MAX_MESSAGE = 240


def openapi_dir() -> Path:
    """The root of the ETSI OpenAPI files; AssertionError saying how to provide it if absent."""
    configured = os.environ.get(ENV_VAR)
    root = Path(configured) if configured else DEFAULT_DIR
    if not root.is_dir():
        source = f"from ${ENV_VAR}" if configured else f"the default; set ${ENV_VAR} to change it"
        raise AssertionError(
            f"ETSI NFV OpenAPI files not found at {root} ({source}). The conformance tests need "
            "the ETSI OpenAPI definitions (nfv-sol005/SOL005/...) there, as CI has them next to "
            "the repository in ../shared/etsi-openapi"
        )
    return root.resolve()


# -- corrections of known errors in the ETSI files -------------------------------------------

_Definitions = dict[str, Any]


def _fix_vnfpkgm(defs: _Definitions) -> None:
    identifier = {"$ref": "../../definitions/SOL005_def.yaml#/definitions/Identifier"}
    version = {"$ref": "../../definitions/SOL005_def.yaml#/definitions/Version"}

    # GS NFV-SOL 005 table 9.5.2.7-1: PkgmSubscription.id is an Identifier; the file says Uri.
    defs["PkgmSubscription"]["properties"]["id"] = identifier

    # Table 9.5.2.5-1: compatibleSpecificationVersions is Version with cardinality 1..N ("each
    # entry shall be formatted..."), i.e. an array; the file declares a single string.
    defs["VnfPkgInfo"]["properties"]["compatibleSpecificationVersions"] = {
        "type": "array",
        "items": version,
    }

    # Table 9.5.3.2-1 (and the attribute's own description in the file): imagePath is 0..1,
    # absent for an external image the NFVO has not downloaded, which has imageUri instead.
    # The file lists imagePath as required; require one of the two.
    image = defs["VnfPackageSoftwareImageInfo"]
    image["required"] = [name for name in image["required"] if name != "imagePath"]
    image["anyOf"] = [{"required": ["imagePath"]}, {"required": ["imageUri"]}]

    flt = defs["PkgmNotificationsFilter"]
    props = flt["properties"]
    # Table 9.5.3.2-1: notificationTypes is an array (0..N) of the enum; the file says string.
    types = props["notificationTypes"]
    props["notificationTypes"] = {
        "type": "array",
        "items": {"type": "string", "enum": types["enum"]},
    }
    # Note 2 of the same table: vnfProductsFromProviders, vnfdId and vnfPkgId are alternatives
    # ("should not be used both"), all optional. The file's oneOf demands exactly one of them,
    # which rejects e.g. a filter on notificationTypes only; allow at most one instead.
    alternatives = [sorted(choice["required"])[0] for choice in flt.pop("oneOf")]
    pairs = [[a, b] for i, a in enumerate(alternatives) for b in alternatives[i + 1 :]]
    flt["not"] = {"anyOf": [{"required": pair} for pair in pairs]}
    # Table 9.5.3.2-1 names the list of products of a provider "vnfProducts"; the file repeats
    # "vnfProductsFromProviders". Keep the file's name and validate the GS's one the same way.
    provider = props["vnfProductsFromProviders"]["items"]["properties"]
    provider.setdefault("vnfProducts", provider["vnfProductsFromProviders"])


def _fix_nsd(defs: _Definitions) -> None:
    key_value_pairs = {"$ref": "../../definitions/SOL005_def.yaml#/definitions/KeyValuePairs"}

    # NsdInfo note 1: "At least one of the attributes - vnfPkgId and nestedNsdInfoId shall be
    # present, after the NSD is on-boarded." The file requires one of them in every state.
    info = defs["NsdInfo"]
    info["anyOf"] = [
        *info["anyOf"],
        {"properties": {"nsdOnboardingState": {"not": {"enum": ["ONBOARDED"]}}}},
    ]

    # NsdInfoModifications note: "At least one of the attributes ... shall be present"; the
    # file's oneOf refuses both together. Its userDefinedData is KeyValuePairs, as NsdInfo's
    # (the file declares an array of them).
    mods = defs["NsdInfoModifications"]
    mods["anyOf"] = mods.pop("oneOf")
    mods["properties"]["userDefinedData"] = key_value_pairs

    # NsdmNotificationsFilter notes 2 and 3: nsdId/nsdInfoId and pnfdId/pnfdInfoIds are
    # alternatives ("should not be used both"), all optional; the file's anyOf of oneOfs
    # demands exactly one of the one pair or the other. Allow at most one of each pair.
    flt = defs["NsdmNotificationsFilter"]
    del flt["anyOf"]
    pairs = [["nsdId", "nsdInfoId"], ["pnfdId", "pnfdInfoIds"]]
    flt["allOf"] = [{"not": {"anyOf": [{"required": pair}]}} for pair in pairs]


def _fix_nslcm_notifications(defs: _Definitions) -> None:
    # SOL005 tables 6.5.2.x-1 name the attribute "timeStamp" (as every other notification
    # here); the file spells it "timestamp" in the NS LCM notifications.
    for definition in defs.values():
        props = definition.get("properties", {})
        if "timestamp" not in props:
            continue
        props["timeStamp"] = props.pop("timestamp")
        definition["required"] = [
            "timeStamp" if req == "timestamp" else req for req in definition.get("required", [])
        ]


def _fix_nslcm(defs: _Definitions) -> None:
    occ = defs["NsLcmOpOcc"]
    # SOL005 table 6.5.2.3-1: the attribute is stateEnteredTime (the file's properties say
    # so too); its required list spells it statusEnteredTime.
    occ["required"] = [
        "stateEnteredTime" if name == "statusEnteredTime" else name for name in occ["required"]
    ]
    # Same table: operationParams is an Object, formatted as the request of the operation
    # (InstantiateNsRequest, ...); the file declares a string enum of the operation types.
    occ["properties"]["operationParams"] = {"type": "object"}
    # ExtVirtualLinkInfo.currentVnfExtCpData is "as specified in clause 5.5.3.2 of ETSI GS
    # NFV-SOL 003", where it is VnfExtCpData with cardinality 1..N (an array, as the SOL003
    # file has it); this file declares a single VnfExtCpData.
    props = defs["ExtVirtualLinkInfo"]["properties"]
    props["currentVnfExtCpData"] = {"type": "array", "items": props["currentVnfExtCpData"]}


def _without_one_of(container: dict[str, Any], names: list[str]) -> None:
    container["oneOf"] = [{"required": [name]} for name in names]


def _fix_sol003_general(defs: dict[str, Any]) -> None:
    # IpOverEthernetAddressData note 2: exactly one of fixedAddresses, numDynamicAddresses and
    # addressRange per ipAddresses entry; the file puts the oneOf on the parent, where it fails.
    data = defs["IpOverEthernetAddressData"]
    del data["oneOf"]
    items = data["properties"]["ipAddresses"]["items"]
    _without_one_of(items, ["fixedAddresses", "numDynamicAddresses", "addressRange"])
    # VnfInstanceSubscriptionFilter notes 1 and 2: two pairs of optional alternatives; the
    # file requires one of each pair and misspells vnfdIds as vnfdId.
    flt = defs["VnfInstanceSubscriptionFilter"]
    del flt["anyOf"]
    pairs = [["vnfdIds", "vnfProductsFromProviders"], ["vnfInstanceIds", "vnfInstanceNames"]]
    flt["not"] = {"anyOf": [{"required": pair} for pair in pairs]}
    # ScaleInfo: the GS attribute is scaleLevel (integer >= 0); the file says scaleToLevel.
    props = defs["ScaleInfo"]["properties"]
    props.pop("scaleToLevel")
    props["scaleLevel"] = {"type": "integer", "minimum": 0}


def _fix_sol003_lcm(defs: dict[str, Any]) -> None:
    # IpOverEthernetAddressInfo note 2: one of addresses and addressRange per ipAddresses entry.
    info = defs["IpOverEthernetAddressInfo"]
    del info["oneOf"]
    _without_one_of(info["properties"]["ipAddresses"]["items"], ["addresses", "addressRange"])
    # VnfLcmOpOcc note 2: "not more than one of" changedInfo and
    # modificationsTriggeredByVnfPkgChange; the file's oneOf demands exactly one.
    occ = defs["VnfLcmOpOcc"]
    del occ["oneOf"]
    occ["not"] = {"required": ["changedInfo", "modificationsTriggeredByVnfPkgChange"]}


SOL003_DEFS = "nfv-sol002-sol003/SOL003/General_Definitions/SOL003_def.yaml"
SOL003_LCM_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagement/definitions/"
    "SOL003VNFLifecycleManagement_def.yaml"
)
_ERRATA: dict[str, Callable[[_Definitions], None]] = {
    VNFPKGM_DEFS: _fix_vnfpkgm,
    NSD_DEFS: _fix_nsd,
    NSLCM_DEFS: _fix_nslcm,
    NSLCM_NOTIFICATION_DEFS: _fix_nslcm_notifications,
    SOL003_DEFS: _fix_sol003_general,
    SOL003_LCM_DEFS: _fix_sol003_lcm,
}


# -- loading -----------------------------------------------------------------------------------


@functools.cache
def _load(path: Path) -> Any:
    if not path.is_file():
        raise AssertionError(f"ETSI OpenAPI file {path} does not exist")
    with path.open(encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    try:
        relative = path.relative_to(openapi_dir()).as_posix()
    except ValueError:
        return document
    fix = _ERRATA.get(relative)
    if fix is not None:
        document = copy.deepcopy(document)
        fix(document["definitions"])
    return document


def _retrieve(uri: str) -> Resource[Any]:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise AssertionError(f"ETSI schema reference to {uri!r} is not a local file")
    return DRAFT4.create_resource(_load(Path(unquote(parts.path))))


# -- formats -----------------------------------------------------------------------------------

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
# RFC 3986 URI (absolute: a scheme is required); only characters the grammar allows.
_URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$"
)

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time: date, time and a mandatory offset."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # raises on 2024-02-30 etc.
    return True


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


# -- validation --------------------------------------------------------------------------------


def _where(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _message(error: ValidationError) -> str:
    schema = error.validator_value
    if error.validator == "not" and isinstance(schema, dict):
        # The "at most one of" that _fix_vnfpkgm writes reads badly as a raw schema.
        alternatives = schema.get("anyOf", [])
        if alternatives and all(set(alt) == {"required"} for alt in alternatives):
            names = sorted({name for alt in alternatives for name in alt["required"]})
            return f"at most one of {', '.join(names)} may be present"
    return error.message


def _describe(errors: Iterable[ValidationError], indent: str = "  ") -> list[str]:
    lines: list[str] = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        lines.append(f"{indent}{_where(error)}: {_shorten(_message(error))}")
        # anyOf/oneOf/not: say why each alternative failed.
        if error.context:
            lines.extend(_describe(error.context, indent + "    "))
    return lines


def violations(document: str, definition: str, instance: Any) -> list[str]:
    """One line per violation of ``definition`` in ``document`` (relative to the ETSI root)."""
    path = openapi_dir() / document
    definitions = _load(path).get("definitions", {})
    if definition not in definitions:
        raise AssertionError(f"{document} defines no {definition!r}")
    schema = {"$ref": f"{path.as_uri()}#/definitions/{definition}"}
    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    validator = Draft4Validator(schema, registry=registry, format_checker=_FORMATS)
    return _describe(validator.iter_errors(instance))


def validate(document: str, definition: str, instance: Any) -> None:
    """AssertionError listing every violation (path and message) of the ETSI definition."""
    found = violations(document, definition, instance)
    if found:
        raise AssertionError(f"not a conformant {definition} ({document}):\n" + "\n".join(found))
