"""The `vpp` fast-path driver (VPP through vpp_papi); see `vnfs.sdk.vpp.driver`."""

from vnfs.sdk.vpp.driver import VppDriver
from vnfs.sdk.vpp.settings import VppSettings, load_settings

__all__ = ["VppDriver", "VppSettings", "load_settings"]
