# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a fleet wants of its interface sysctls, and how a host measures up: compliance and drift.

Expectations come from inventory variables: one mapping for every interface
(`expect`), and per interface name or glob (`expect_by_interface`), in the
order written.  For each key the first entry that matches an interface wins:
its exact name, then the globs in order, then `expect`.  `default` can be
named to check conf/default, which new interfaces (a pod's veth) start from.
"""

import fnmatch

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf

DEFAULT_IGNORE = ("lo",)


class Expectations:
    def __init__(self, expect, by_interface=None, ignore=DEFAULT_IGNORE, needed_by=("sysctl_expected",)):
        """`needed_by`: the checks that compare against the expectations; without them none need be given."""
        self.expect = conf.check_settings(expect, "expect", allowed_lists=True) if expect else {}
        if not isinstance(by_interface or {}, dict):
            raise OptionError("expect_by_interface", by_interface,
                              "a mapping of interface names or globs to expectations")
        entries = [(conf.check_interface(name, "expect_by_interface"),
                    conf.check_settings(wanted, "expect_by_interface.%s" % name, allowed_lists=True))
                   for name, wanted in (by_interface or {}).items()]
        if any(name == "all" for name, _wanted in entries):
            raise OptionError("expect_by_interface.all", reason="conf/all is not an interface; expect the effective "
                              "values of the interfaces instead")
        # Exact names first, then globs as written.
        self.by_interface = sorted(entries, key=lambda entry: conf.is_glob(entry[0]))
        self.ignore = [conf.check_interface(name, "ignore_interfaces") for name in ignore or ()]
        if not self.expect and not self.by_interface and needed_by:
            raise OptionError("expect", reason="give at least one expectation (expect or expect_by_interface): the "
                              "checks %s compare against it" % ", ".join(needed_by))

    def keys(self):
        keys = set(self.expect)
        for _name, wanted in self.by_interface:
            keys.update(wanted)
        return sorted(keys)

    def ignored(self, interface):
        return any(fnmatch.fnmatchcase(interface, pattern) for pattern in self.ignore)

    def for_interface(self, interface):
        """{key: (allowed values, where the expectation comes from)} for one interface."""
        if self.ignored(interface):
            return {}
        found = {}
        for name, wanted in self.by_interface:
            if name == interface or (conf.is_glob(name) and interface not in conf.SPECIAL
                                     and fnmatch.fnmatchcase(interface, name)):
                for key, allowed in wanted.items():
                    found.setdefault(key, (allowed, "expect_by_interface.%s" % name))
        if interface not in conf.SPECIAL:
            for key, allowed in self.expect.items():
                found.setdefault(key, (allowed, "expect"))
        return found

    def checks_default(self):
        return any(name == "default" for name, _wanted in self.by_interface)


class Snapshot:
    """The conf values of one network namespace, read once: {family: {interface: {name: value}}}."""

    def __init__(self, values):
        self.values = values

    @classmethod
    def read(cls, keys):
        names = {family: {"forwarding"} for family in ("ipv4", "ipv6")}
        for key in keys:
            family, name = conf.family_and_name(key)
            names[family].add(name)
        values = {}
        for family, wanted in names.items():
            for interface in list(conf.SPECIAL) + conf.interfaces_present(family):
                values.setdefault(family, {})[interface] = {name: conf.read(family, interface, name)
                                                            for name in sorted(wanted)}
        return cls(values)

    def get(self, family, interface, name):
        return self.values.get(family, {}).get(interface, {}).get(name)

    def interfaces(self, family):
        return sorted(name for name in self.values.get(family, {}) if name not in conf.SPECIAL)

    def effective(self, key, interface, all_value=None, own=None):
        """What the kernel applies on `interface` (conf/default: its own value), optionally with other values."""
        family, name = conf.family_and_name(key)
        own = self.get(family, interface, name) if own is None else own
        if interface == "default":
            return own
        all_value = self.get(family, "all", name) if all_value is None else all_value
        return conf.effective(key, all_value, own, self.get(family, interface, "forwarding"))

    def targets(self, expectations, key):
        """Every interface the key matters on, with its expectation (None: not expected, keep as it is)."""
        family = conf.family_and_name(key)[0]
        interfaces = self.interfaces(family) + (["default"] if expectations.checks_default() else [])
        return [(interface, expectations.for_interface(interface).get(key)) for interface in interfaces
                if not expectations.ignored(interface)]


def evaluate(expectations, snapshot):
    """Every (interface, key) expected, with its effective value, and whether that value is allowed."""
    rows = []
    for key in expectations.keys():
        for interface, expected in snapshot.targets(expectations, key):
            effective = snapshot.effective(key, interface)
            if expected is None or effective is None:
                continue
            allowed, source = expected
            rows.append({"interface": interface, "key": key, "effective": effective, "allowed": allowed,
                         "source": source, "compliant": effective in allowed})
    return rows


def drift(keys, snapshot, boot, ignored=lambda interface: False):
    """Where the runtime value differs from what the boot configuration writes (conf/all and default included)."""
    found = []
    for key in keys:
        family, name = conf.family_and_name(key)
        for interface in list(conf.SPECIAL) + snapshot.interfaces(family):
            runtime = snapshot.get(family, interface, name)
            persisted = boot.value(family, interface, name)
            if ignored(interface) or runtime is None or persisted is None or str(runtime) == persisted[0]:
                continue
            found.append({"interface": interface, "key": key, "runtime": runtime,
                          "persistent": int(persisted[0]) if persisted[0].isdigit() else persisted[0],
                          "file": persisted[1]})
    return found
