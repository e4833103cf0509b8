"""The collection's AnsibleModule refuses, by name, the values ansible-core's argument check let out as a traceback
or let through (found by tests/integration/module_fuzz.py)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule

SPEC = {"count": {"type": "int"}, "lookups": {"type": "list", "elements": "dict", "options": {"dst": {"type": "str"}}},
        "settings": {"type": "dict"}, "handle": {"type": "dict", "options": {"port": {"type": "str"}}}}


def refusal(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        PacketpathModule(argument_spec=SPEC)
    return json.loads(capsys.readouterr().out)["msg"]


@pytest.mark.parametrize("value", ["inf", "-Infinity", float("inf")])
def test_infinity_for_an_int_is_refused_not_a_traceback(value, capsys):
    assert "argument 'count'" in refusal({"count": value}, capsys)


def test_a_boolean_for_an_int_is_refused(capsys):
    assert refusal({"count": True}, capsys).endswith("True is a boolean, not an int; nothing was changed")


@pytest.mark.parametrize("value", ["abc", ["lo"]])
def test_text_for_a_list_of_mappings_is_refused_naming_the_option(value, capsys):
    assert refusal({"lookups": value}, capsys) == (
        "lookups=%r: dictionary requested, could not parse JSON or key=value; nothing was changed" % (value,))


@pytest.mark.parametrize("value", [5, 1.5, True, ["port"]])
def test_a_number_or_a_list_for_a_mapping_with_suboptions_is_refused_not_a_traceback(value, capsys):
    assert refusal({"handle": value}, capsys) == (
        "argument 'handle' is of type %s and we were unable to convert to dict: a mapping is wanted; nothing was "
        "changed" % type(value).__name__)


def test_good_values_pass_as_ansible_core_converts_them():
    with patch_module_args({"count": "3", "lookups": [{"dst": "192.0.2.1"}], "settings": "rp_filter=2",
                            "handle": {"port": 28080}}):
        module = PacketpathModule(argument_spec=SPEC)
    assert module.params["count"] == 3 and module.params["lookups"] == [{"dst": "192.0.2.1"}]
    assert module.params["handle"] == {"port": "28080"}
    assert module.params["settings"] == {"rp_filter": "2"}
