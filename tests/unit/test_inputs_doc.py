"""docs/inputs.md is the playbooks' inputs: every packetpath_ variable a playbook (or a role it runs, from the
inventory) reads is a row, with the playbooks that read it and, where the playbook gives a literal default, that
default. A variable a playbook sets itself (vars, register, set_fact) is not an input."""

import glob
import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
NAME = re.compile(r"\bpacketpath_[a-z0-9_]*[a-z0-9]")
DEFAULT = re.compile(r"\b(packetpath_[a-z0-9_]+) \| default\(((?:'[^']*'|true|false|none|\d+))\)")
# What the roles' defaults read from the inventory, per playbook that runs the role.
ROLE_OF = {"audit": ["audit"], "remediate_rp_filter": ["remediate_rp_filter", "audit"]}


def documented():
    with open(os.path.join(ROOT, "docs", "inputs.md"), encoding="utf-8") as handle:
        rows = [line.strip().strip("|").split(" | ") for line in handle if line.startswith("| `packetpath_")]
    return {cells[0].strip("` "): [cell.strip() for cell in cells[1:]] for cells in rows}


def set_here(data, found):
    """The packetpath_ names a playbook sets itself: keys of vars and set_fact, values of register."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key.startswith("packetpath_"):
                found.add(key)
            if key == "register" and isinstance(value, str):
                found.add(value)
            set_here(value, found)
    elif isinstance(data, list):
        for value in data:
            set_here(value, found)
    return found


def read_by_playbooks():
    """{input: {playbook names}} and {(input, playbook): the literal defaults it is given}."""
    readers, defaults = {}, {}
    for path in sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))):
        playbook = os.path.basename(path)[:-4]
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        texts = [text]
        for role in ROLE_OF.get(playbook, []):
            with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
                texts.append(handle.read())
        internal = set_here(yaml.safe_load(text), set())
        for name in set(NAME.findall("\n".join(texts))) - internal:
            readers.setdefault(name, set()).add(playbook)
        for name, value in DEFAULT.findall(text):
            defaults.setdefault((name, playbook), set()).add(value)
    with open(os.path.join(ROOT, "playbooks", "vars", "connection.yml"), encoding="utf-8") as handle:
        readers.update((name, {"every playbook"}) for name in NAME.findall(handle.read()))
    return readers, defaults


def test_every_input_a_playbook_reads_is_a_row_with_its_playbooks_and_default():
    rows, (readers, defaults) = documented(), read_by_playbooks()
    assert sorted(rows) == sorted(readers), set(rows) ^ set(readers)
    for name, playbooks in readers.items():
        assert rows[name][0] == ", ".join(sorted(playbooks)), (name, rows[name][0])
    for (name, playbook), values in defaults.items():
        if name not in readers:
            continue  # a variable the playbook sets itself, read with a default before it is set
        for value in values - {"'x'", "''", "'!all'"}:  # placeholders of a required input's checks, not defaults
            assert "`%s`" % value in rows[name][2], (name, playbook, value, rows[name][2])
