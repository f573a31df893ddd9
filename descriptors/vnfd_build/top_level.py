"""The Vnfd itself: flavours combined, VNF-wide properties, software images, artifacts."""

from __future__ import annotations

import posixpath

from pydantic import ValidationError as PydanticValidationError
from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.flavour_merge import build_flavours
from descriptors.tosca_imports import Document
from descriptors.vnfd import AdditionalArtifact, SoftwareImage, Vnfd
from descriptors.vnfd_build.flavour import build_flavour
from descriptors.vnfd_build.values import pydantic_summary

_VNF_FIELDS = {
    "descriptor_id": "vnfd_id",
    "provider": "vnf_provider",
    "product_name": "vnf_product_name",
    "software_version": "vnf_software_version",
    "descriptor_version": "vnfd_version",
}


def build_vnfd(
    entry_rel: str, top: ToscaTemplate, parsed: list[tuple[Document, ToscaTemplate]]
) -> Vnfd:
    flavours, first_rel, first = build_flavours(parsed, top, build_flavour, _VNF_FIELDS, kind="VNF")
    props = first.props
    missing = [key for key in (*_VNF_FIELDS, "vnfm_info") if props.get(key) in (None, "", [])]
    if missing:
        raise DescriptorError(
            f"VNF node type {first.node_type!r} gives no value for {', '.join(missing)}",
            location=first_rel,
        )

    images: dict[str, SoftwareImage] = {}
    artifacts: dict[str, AdditionalArtifact] = {}
    for flavour in flavours:
        for vdu in flavour.vdus:
            if vdu.sw_image is not None:
                images.setdefault(vdu.sw_image.id, vdu.sw_image)
        for storage in flavour.storages:
            if storage.sw_image is not None:
                images.setdefault(storage.sw_image.id, storage.sw_image)
        for artifact in [*flavour.artifacts, *(a for v in flavour.vdus for a in v.artifacts)]:
            if "://" in artifact.file:
                continue
            path = posixpath.normpath(
                posixpath.join(posixpath.dirname(flavour.definitions_file), artifact.file)
            )
            artifacts.setdefault(
                path,
                AdditionalArtifact(
                    artifact_path=path,
                    checksum=artifact.checksum,
                    metadata={"type": artifact.type, "name": artifact.name, **artifact.properties},
                ),
            )
    try:
        return Vnfd(
            vnfd_id=str(props["descriptor_id"]),
            vnf_provider=str(props["provider"]),
            vnf_product_name=str(props["product_name"]),
            vnf_software_version=str(props["software_version"]),
            vnfd_version=str(props["descriptor_version"]),
            vnfm_info=[str(v) for v in props["vnfm_info"]],
            product_info_name=props.get("product_info_name"),
            product_info_description=props.get("product_info_description"),
            localization_languages=list(props.get("localization_languages") or []),
            default_localization_language=props.get("default_localization_language"),
            vnf_node_type=first.node_type,
            configurable_properties=dict(props.get("configurable_properties") or {}),
            modifiable_attributes=dict(props.get("modifiable_attributes") or {}),
            lcm_operations_configuration=dict(props.get("lcm_operations_configuration") or {}),
            entry_definitions=entry_rel,
            flavours=flavours,
            software_images=list(images.values()),
            additional_artifacts=list(artifacts.values()),
        )
    except PydanticValidationError as exc:
        raise DescriptorError(pydantic_summary(exc), location=entry_rel) from None
