"""Each role has a README.md, and it says what the role's argument spec says (tools/role_readme.py writes them)."""

import importlib.util
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
_SPEC = importlib.util.spec_from_file_location("role_readme", os.path.join(ROOT, "tools", "role_readme.py"))
role_readme = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(role_readme)


def test_every_role_has_a_readme_written_from_its_argument_spec():
    assert role_readme.roles() == ["audit", "cleanup", "diagnose_port", "prerequisites", "remediate_rp_filter"]
    assert role_readme.main(["--check"]) == 0  # else: run tools/role_readme.py


def test_a_readme_lists_every_option_with_the_spec_s_default():
    text = role_readme.render("remediate_rp_filter")
    assert "| `remediate_rp_filter_force` | bool | `false` | Make interfaces strict" in text
    assert "| `remediate_rp_filter_persistent_file` | str | `90-packetpath-interfaces.conf` |" in text
    assert "Run by the playbook `packetpath.linux.remediate_rp_filter`" in text
