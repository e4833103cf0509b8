"""Each role's argument spec says what its defaults/main.yml sets: `ansible-doc -t role` and the spec's own
validation show the spec's default, the role runs with the file's. A literal value in defaults/main.yml is the
spec's `default`; a templated one (it depends on another variable) or null has none in the spec that says otherwise."""

import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
ROLES = sorted(name for name in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.exists(os.path.join(ROOT, "roles", name, "meta", "argument_specs.yml")))


def load(role, *path):
    full = os.path.join(ROOT, "roles", role, *path)
    if not os.path.exists(full):
        return {}
    with open(full, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_the_spec_s_defaults_are_the_role_s_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    mismatched = []
    for entry_point, spec in load(role, "meta", "argument_specs.yml")["argument_specs"].items():
        for name, option in (spec.get("options") or {}).items():
            if name not in defaults:
                continue
            value = defaults[name]
            literal = value is not None and "{{" not in str(value)
            if literal and option.get("default") != value:
                mismatched.append((entry_point, name, option.get("default", "(none)"), value))
            elif not literal and option.get("default") is not None:
                mismatched.append((entry_point, name, option["default"], value))
    assert not mismatched, mismatched  # (entry point, option, the spec's default, defaults/main.yml's)
