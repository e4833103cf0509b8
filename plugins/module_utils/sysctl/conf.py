# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-interface IP sysctls: read and write them at runtime, keep them in one sysctl.d file of ours,
and tell the value the kernel actually applies.

The value that matters is rarely the one in any single file: for rp_filter the
kernel applies max(conf/all, conf/IFACE), for log_martians conf/all OR
conf/IFACE, and conf/default only seeds interfaces created later.
"""

import fnmatch
import os
import re

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError

PROC_CONF = "/proc/sys/net/%s/conf"
SPECIAL = ("all", "default")
# key -> (family, allowed values, how the kernel combines conf/all and conf/IFACE)
KEYS = {
    "rp_filter": ("ipv4", (0, 1, 2), "max"),
    "log_martians": ("ipv4", (0, 1), "or"),
    "accept_local": ("ipv4", (0, 1), "or"),
    "src_valid_mark": ("ipv4", (0, 1), "or"),
    "route_localnet": ("ipv4", (0, 1), "or"),
    "forwarding": ("ipv4", (0, 1), "interface"),
    "accept_source_route": ("ipv4", (0, 1), "and"),
    "send_redirects": ("ipv4", (0, 1), "or"),
    "accept_redirects": ("ipv4", (0, 1), "redirects"),
    # ARP policy (Documentation/networking/ip-sysctl.rst): arp_ignore 4-7 are reserved.
    "arp_ignore": ("ipv4", (0, 1, 2, 3, 8), "max"),
    "arp_announce": ("ipv4", (0, 1, 2), "max"),
    "arp_filter": ("ipv4", (0, 1), "or"),
    "proxy_arp": ("ipv4", (0, 1), "or"),
    "ipv6.forwarding": ("ipv6", (0, 1), "interface"),
    "ipv6.accept_source_route": ("ipv6", (0, 1), "interface"),
    "ipv6.accept_redirects": ("ipv6", (0, 1), "interface"),
    # Writing conf/all copies the value to every interface, so each interface's own value is the one applied.
    "ipv6.disable_ipv6": ("ipv6", (0, 1), "interface"),
}
_NAME = re.compile(r"^[A-Za-z0-9_.@:*?\[\]-]{1,15}$")


def family_and_name(key):
    family = KEYS[key][0]
    return family, key.split(".", 1)[1] if "." in key else key


def check_settings(settings, option="settings", allowed_lists=False):
    """{key: value} with known keys and allowed values, as ints; with `allowed_lists`, {key: [values]}
    (an expectation: a value or a list of the values allowed)."""
    if not isinstance(settings, dict) or not settings:
        raise OptionError(option, settings, "give a mapping of keys to values, e.g. {rp_filter: 2}")
    checked = {}
    for key, value in settings.items():
        if key not in KEYS:
            raise OptionError(option, reason="%r is not a conf key this module knows; known: %s"
                              % (key, ", ".join(sorted(KEYS))))
        allowed = KEYS[key][1]
        values = value if isinstance(value, list) and allowed_lists else [value]
        if not values:
            raise OptionError("%s.%s" % (option, key), [], "list at least one allowed value")
        for item in values:
            if isinstance(item, bool) or str(item).strip() not in [str(a) for a in allowed]:
                raise OptionError("%s.%s" % (option, key), item, "must be one of %s" % ", ".join(map(str, allowed)))
        ints = [int(str(v).strip()) for v in values]
        checked[key] = ints if allowed_lists else ints[0]
    return checked


def check_interface(name, option="interfaces"):
    if not isinstance(name, str) or name in (".", "..") or not _NAME.fullmatch(name):
        raise OptionError(option, reason="%r is not an interface name or glob (1-15 characters: letters, digits, "
                          "_ . @ : - and * ? [ ]; no /, no spaces, not . or ..)" % (name,))
    return name


def is_glob(name):
    return any(c in name for c in "*?[")


def conf_path(family, interface, name):
    """/proc/sys path: the interface's real name is the directory, dots and all (eth0.100)."""
    return os.path.join(PROC_CONF % family, interface, name)


def sysctl_key(family, interface, name):
    """The sysctl(8) name: a dot inside the interface name is written as a slash (eth0/100)."""
    return "net.%s.conf.%s.%s" % (family, interface.replace(".", "/"), name)


def interfaces_present(family="ipv4"):
    try:
        return sorted(n for n in os.listdir(PROC_CONF % family) if n not in SPECIAL)
    except OSError:
        return []


def read(family, interface, name):
    return read_path(conf_path(family, interface, name))


def read_path(path):
    """An integer sysctl by its /proc/sys path, None where it is not there or not a number."""
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def write(family, interface, name, value):
    with open(conf_path(family, interface, name), "w") as handle:
        handle.write("%d\n" % value)


def effective(key, all_value, interface_value, forwarding=None):
    """The value the kernel applies for an interface, from conf/all and conf/IFACE (see IN_DEV_* in the kernel)."""
    rule = KEYS[key][2]
    if all_value is None or interface_value is None or rule == "interface":
        return interface_value
    if rule == "max":
        return max(all_value, interface_value)
    if rule == "and" or rule == "redirects" and forwarding:
        return int(bool(all_value and interface_value))
    return int(bool(all_value or interface_value))


def expand(interfaces, present):
    """Concrete interfaces (all, default and existing ones) for names and globs; names that do not exist."""
    concrete, missing = [], []
    for name in interfaces:
        if name in SPECIAL:
            matched = [name]
        elif is_glob(name):
            matched = fnmatch.filter(present, name)
        else:
            matched = [name] if name in present else []
            if not matched:
                missing.append(name)
        concrete.extend(m for m in matched if m not in concrete)
    return concrete, missing
