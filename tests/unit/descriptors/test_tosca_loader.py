"""tosca-parser's file loading as parse_vnfd patches it: local files only, SOL001 from memory."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import toscaparser.imports
import toscaparser.tosca_template
import yaml
from toscaparser.tosca_template import ToscaTemplate

from descriptors import sol001, tosca_imports, tosca_parser_fixes
from descriptors.errors import DescriptorError
from descriptors.tosca import parse_vnfd
from tests.unit.descriptors.test_sample_packages import parse
from tests.unit.descriptors.test_tosca import VNFD_TYPES_URL, single_file, write

pytestmark = pytest.mark.usefixtures("no_network")


def test_loader_is_installed() -> None:
    assert toscaparser.imports.YAML_LOADER is tosca_parser_fixes.load_for_tosca_parser
    assert toscaparser.tosca_template.YAML_LOADER is tosca_parser_fixes.load_for_tosca_parser


@pytest.mark.parametrize(
    ("path", "a_file"),
    [
        ("https://forge.etsi.org/rep/nfv/SOL001/raw/v4.4.1/etsi_nfv_sol001_vnfd_types.yaml", False),
        ("file:///etc/hosts", False),
        ("/etc/hosts", False),
        ("/dev/zero", True),
        ("/nonexistent/types.yaml", True),
    ],
)
def test_loader_refuses_anything_but_a_local_file(path: str, a_file: bool) -> None:
    with pytest.raises(tosca_parser_fixes.ForbiddenLoad):
        toscaparser.imports.YAML_LOADER(path, a_file)


def test_plain_tosca_parser_cannot_fetch_an_url_import(tmp_path: Path) -> None:
    """The guarantee holds even for a template parse_vnfd has not rewritten."""
    path = write(tmp_path, {"vnfd.yaml": single_file([VNFD_TYPES_URL])}) / "vnfd.yaml"
    with pytest.raises(tosca_parser_fixes.ForbiddenLoad, match="only local files"):
        ToscaTemplate(str(path))


def test_reading_outside_the_working_copy_is_refused_during_a_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = write(
        tmp_path, {"outside.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\n"}
    )
    imports_of = tosca_imports.WorkingCopy.imports_of

    def leaky(
        self: tosca_imports.WorkingCopy,
        doc: tosca_imports.Document,
        *,
        exclude: set[str] | None = None,
    ) -> list[str]:
        return [*imports_of(self, doc, exclude=exclude), str(outside / "outside.yaml")]

    monkeypatch.setattr(tosca_imports.WorkingCopy, "imports_of", leaky)
    pkg = write(tmp_path / "pkg", {"Definitions/vnfd.yaml": single_file()})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(pkg, "Definitions/vnfd.yaml")
    assert "outside the working copy" in err.value.detail
    assert err.value.location == "Definitions/vnfd.yaml"


def test_sol001_copies_are_written_once_and_served_from_memory(tmp_path: Path) -> None:
    write(tmp_path, {"Definitions/vnfd.yaml": single_file()})
    parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    directory = tosca_imports.SOL001_COPIES.directory()
    copy = directory / sol001.VNFD_TYPES.name
    written = copy.stat().st_mtime_ns
    parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert tosca_imports.SOL001_COPIES.directory() == directory
    assert copy.stat().st_mtime_ns == written
    # The copy imports the common types by absolute path, not relatively.
    imports = yaml.safe_load(copy.read_text("utf-8"))["imports"]
    assert imports == [str(directory / sol001.COMMON_TYPES.name)]
    # Served from memory, as a fresh object each time.
    first = tosca_parser_fixes.load_for_tosca_parser(str(copy))
    second = tosca_parser_fixes.load_for_tosca_parser(str(copy))
    assert first == second == yaml.safe_load(copy.read_text("utf-8"))
    assert first is not second
    assert first["node_types"] is not second["node_types"]


def test_mutating_loaded_content_does_not_reach_the_next_load() -> None:
    copy = tosca_imports.SOL001_COPIES.directory() / sol001.VNFD_TYPES.name
    loaded = tosca_parser_fixes.load_for_tosca_parser(str(copy))
    loaded["imports"].append("/tmp/injected.yaml")
    loaded["node_types"].clear()
    again = tosca_parser_fixes.load_for_tosca_parser(str(copy))
    assert "/tmp/injected.yaml" not in again["imports"]
    assert again["node_types"]


def test_removed_copies_are_rewritten(tmp_path: Path) -> None:
    directory = tosca_imports.SOL001_COPIES.directory()
    (directory / sol001.COMMON_TYPES.name).unlink()
    write(tmp_path, {"Definitions/vnfd.yaml": single_file()})
    assert parse_vnfd(tmp_path, "Definitions/vnfd.yaml").vnf_product_name == "TestVNF"
    assert (tosca_imports.SOL001_COPIES.directory() / sol001.COMMON_TYPES.name).is_file()


def test_changed_sources_get_new_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = tosca_imports.SOL001_COPIES.directory()
    edited = tmp_path / sol001.COMMON_TYPES.name
    edited.write_text(sol001.COMMON_TYPES.read_text("utf-8") + "\n# edited\n", "utf-8")
    monkeypatch.setitem(sol001.ETSI_TYPE_FILES, sol001.COMMON_TYPES.name, edited)
    after = tosca_imports.SOL001_COPIES.directory()
    assert after != before
    assert not before.exists()
    monkeypatch.undo()
    assert tosca_imports.SOL001_COPIES.directory() != after


def test_snapshots_only_answer_the_copies() -> None:
    directory = tosca_imports.SOL001_COPIES.directory()
    for name in sol001.ETSI_TYPE_FILES:
        snapshot = tosca_imports.SOL001_COPIES.snapshot(str(directory / name))
        assert snapshot is not None
        assert pickle.loads(snapshot) == yaml.safe_load((directory / name).read_text("utf-8"))
    assert tosca_imports.SOL001_COPIES.snapshot(str(sol001.VNFD_TYPES)) is None


def test_consecutive_parses_of_different_packages_are_independent() -> None:
    """Nothing one parse loads (or tosca-parser mutates) leaks into the next."""
    nat = parse("nat").model_dump()
    slb = parse("slb").model_dump()
    cen = parse("cen").model_dump()
    assert parse("nat").model_dump() == nat
    assert parse("slb").model_dump() == slb
    assert parse("cen").model_dump() == cen
    assert nat["vnf_product_name"] != slb["vnf_product_name"] != cen["vnf_product_name"]
    assert [f["flavour_id"] for f in nat["flavours"]] == ["default", "large"]
    assert [f["flavour_id"] for f in slb["flavours"]] == ["default"]


def test_a_failed_parse_does_not_affect_the_next(tmp_path: Path) -> None:
    nat = parse("nat").model_dump()
    bogus = "    bogus:\n      type: tosca.nodes.nfv.NoSuchThing\n"
    write(tmp_path, {"Definitions/vnfd.yaml": single_file(extra_nodes=bogus)})
    with pytest.raises(DescriptorError, match="NoSuchThing"):
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert parse("nat").model_dump() == nat
