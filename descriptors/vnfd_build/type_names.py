"""The SOL001 type names the model builder dispatches on, and type ancestry."""

from __future__ import annotations

from typing import Any

# Type names the model builder dispatches on.
VNF = "tosca.nodes.nfv.VNF"
VDU_COMPUTE = "tosca.nodes.nfv.Vdu.Compute"
VDU_OS_CONTAINER_DU = "tosca.nodes.nfv.Vdu.OsContainerDeployableUnit"
VDU_CP = "tosca.nodes.nfv.VduCp"
VNF_EXT_CP = "tosca.nodes.nfv.VnfExtCp"
VNF_VIRTUAL_LINK = "tosca.nodes.nfv.VnfVirtualLink"
STORAGE_TYPES = {
    "tosca.nodes.nfv.Vdu.VirtualBlockStorage": "block",
    "tosca.nodes.nfv.Vdu.VirtualObjectStorage": "object",
    "tosca.nodes.nfv.Vdu.VirtualFileStorage": "file",
}
SW_IMAGE_ARTIFACT = "tosca.artifacts.nfv.SwImage"
PROJECT_TRAFFIC_MONITORING = "mano.policies.nfv.VduTrafficMonitoringParameter"
MONITORING_TYPES = {
    "tosca.policies.nfv.VnfMonitoringParameter": ("vnf", True),
    "tosca.policies.nfv.VduMonitoringParameter": ("vdu", True),
    "tosca.policies.nfv.VirtualLinkMonitoringParameter": ("virtual_link", True),
    PROJECT_TRAFFIC_MONITORING: ("vdu", False),
}


def type_chain(type_definition: Any) -> list[str]:
    """The type's name followed by its ancestors' names."""
    chain: list[str] = []
    current = type_definition
    while current is not None and len(chain) < 64:
        name = getattr(current, "type", None)
        if not isinstance(name, str) or name in chain:
            break
        chain.append(name)
        current = current.parent_type
    return chain


def is_a(template: Any, type_name: str) -> bool:
    return type_name in type_chain(template.type_definition)
