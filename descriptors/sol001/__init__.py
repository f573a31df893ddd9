"""The project's own SOL001 type definitions and how package imports map to them.

Packages import the ETSI type files by URL
(``https://forge.etsi.org/rep/nfv/SOL001/raw/v4.4.1/etsi_nfv_sol001_vnfd_types.yaml``)
or by bare file name. Parsing must work without a network, and a package
must not make the parser fetch anything, so those imports are answered from
the files in this directory.

Every release from v2.6.1 on maps to the same local files. Between releases
SOL001 adds optional properties and new types and deprecates a few; it does
not change the meaning of existing names. Our files follow the newest
release (v4.4.1) and keep the older optional properties, so a package
written for any release >= 2.6.1 validates against them. Releases before
2.6.1 used a different layout (one file per type family) and are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

TYPES_DIR = Path(__file__).resolve().parent
COMMON_TYPES = TYPES_DIR / "etsi_nfv_sol001_common_types.yaml"
VNFD_TYPES = TYPES_DIR / "etsi_nfv_sol001_vnfd_types.yaml"
NSD_TYPES = TYPES_DIR / "etsi_nfv_sol001_nsd_types.yaml"
PROJECT_TYPES = TYPES_DIR / "nfv_mano_types.yaml"
"""Canonical copy of the project's extension types that every sample package carries."""
PROJECT_NSD_TYPES = TYPES_DIR / "nfv_mano_nsd_types.yaml"
"""Canonical copy of the project's NSD extension types that the sample NSDs carry."""

ETSI_TYPE_FILES: dict[str, Path] = {
    COMMON_TYPES.name: COMMON_TYPES,
    VNFD_TYPES.name: VNFD_TYPES,
    NSD_TYPES.name: NSD_TYPES,
}

MIN_VERSION = (2, 6, 1)

# ETSI's forge is a GitLab: both the old ".../raw/<tag>/" and the current
# ".../-/raw/<tag>/" forms of the raw file URL are in use in real packages.
_ETSI_URL = re.compile(
    r"^https?://forge\.etsi\.org/rep/nfv/SOL001/(?:-/)?raw/"
    r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)/(?P<name>[A-Za-z0-9_.]+)$"
)


def local_type_file(reference: str) -> Path | None:
    """The local file answering an import of an ETSI SOL001 type file, or None.

    None means the reference is not one of ours: a URL of another file or
    host, an ETSI release older than 2.6.1, or any other file name.
    """
    if reference in ETSI_TYPE_FILES:
        return ETSI_TYPE_FILES[reference]
    match = _ETSI_URL.match(reference)
    if match is None:
        return None
    version = (int(match["major"]), int(match["minor"]), int(match["patch"]))
    if version < MIN_VERSION:
        return None
    return ETSI_TYPE_FILES.get(match["name"])
