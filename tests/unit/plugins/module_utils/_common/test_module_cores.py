"""The module base reaches into ansible-core's argument checking (its type table, `_load_params`, `fail_json` while
checking): on each supported ansible-core, 2.17 and 2.18 (`make unit` installs them under build/ansible-core/) and
the venv's 2.19, the same refusals name the option and say once that nothing was changed, and good values pass."""

import json
import os
import subprocess
import sys

import pytest
from recorded import ROOT

# Run in a process of its own per ansible-core: the release first on sys.path, then the collection.
CHILD = r"""
import contextlib, io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from ansible.module_utils import basic
from ansible.release import __version__
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
SPEC = {"count": {"type": "int"}, "lookups": {"type": "list", "elements": "dict", "options": {"dst": {"type": "str"}}},
        "handle": {"type": "dict", "options": {"port": {"type": "str"}}}, "name": {"type": "str"}}
answers = []
for args in json.loads(sys.stdin.read()):
    try:  # 2.19 hands a module its arguments through this; 2.17 and 2.18 read basic._ANSIBLE_ARGS
        from ansible.module_utils.testing import patch_module_args
        given = patch_module_args(args)
    except ImportError:
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        given = contextlib.nullcontext()
    printed = io.StringIO()
    with given, contextlib.redirect_stdout(printed):
        try:
            answers.append({"params": {k: v for k, v in PacketpathModule(argument_spec=SPEC).params.items()
                                       if v is not None}})
        except SystemExit:
            answers.append({"msg": json.loads(printed.getvalue())["msg"]})
print(json.dumps({"version": __version__, "answers": answers}))
"""
CASES = [({"count": "inf"}, "argument 'count'"), ({"count": True}, "True is a boolean, not an int"),
         ({"lookups": "abc"}, "lookups='abc': dictionary requested"),
         ({"handle": 5}, "argument 'handle' is of type int and we were unable to convert to dict: a mapping is wanted"),
         ({"name": "a\udc80b"}, "name='a\\udc80b': not valid text (a lone surrogate, which no encoding can write)")]
GOOD = {"count": "3", "handle": {"port": 28080}, "lookups": [{"dst": "192.0.2.1"}]}
CORES = os.environ.get("PACKETPATH_ANSIBLE_CORE_DIRS", "").split()


def answers_of(core):
    done = subprocess.run([sys.executable, "-c", CHILD, core, os.path.join(ROOT, "build", "collections")],
                          input=json.dumps([args for args, _said in CASES] + [GOOD]), capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_the_older_cores_are_installed_for_the_run():
    assert [os.path.basename(core) for core in CORES] == ["2.17.14", "2.18.19"], \
        "PACKETPATH_ANSIBLE_CORE_DIRS: run the unit tests through `make unit`"


@pytest.mark.parametrize("core", CORES + [os.path.dirname(os.path.dirname(os.path.abspath(
    __import__("ansible").__file__)))], ids=lambda core: os.path.basename(core) if "ansible-core" in core else "venv")
def test_each_supported_ansible_core_refuses_by_name_and_passes_good_values(core):
    found = answers_of(core)
    assert found["version"].startswith(("2.17.", "2.18.", "2.19."))
    for (args, said), answer in zip(CASES, found["answers"]):
        assert said in answer.get("msg", ""), (found["version"], args, answer)
        assert answer["msg"].endswith("; nothing was changed") and answer["msg"].count("nothing was changed") == 1
    assert found["answers"][-1] == {"params": {"count": 3, "handle": {"port": "28080"},
                                               "lookups": [{"dst": "192.0.2.1"}]}}, found
