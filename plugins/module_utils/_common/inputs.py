# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of option values that Ansible's argument spec cannot express, shared by the modules: each refuses the
value before anything is touched, naming the option (OptionError)."""

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError

KIND_WORDS = {dict: "a mapping", list: "a list", str: "text"}
ITEMS_WORDS = {dict: "mappings", list: "lists", str: "texts"}


def check_paths(params, options):
    """Refuse, before anything is touched, a path option whose value the system cannot take: a NUL byte, which
    the kernel's path calls reject with a bare ValueError (a traceback), or a file name longer than a directory
    entry can be (which would fail only after its directories were made)."""
    for option in options:
        value = params.get(option)
        if not value:
            continue
        if "\0" in value:
            raise OptionError(option, value, "a path cannot hold a NUL byte")
        if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in value.split("/")):
            raise OptionError(option, value, "a name in the path is longer than 255 bytes")


def check_per_host(params, options, kind=dict, fields=None):
    """Refuse a per-host mapping (host name -> a registered module result, or with kind=list a list of changes)
    whose value is of another kind: the controller modules read them key by key, and text there would end in a
    traceback. `fields`: {key: (kind, kind of each item or None[, keys each item must have])} of a result's keys the
    module reads, each refused where it is there (not null) and of another kind, or an item lacks a key."""
    what = "a registered module result (a mapping)" if kind is dict else "a list"
    for option in options:
        for host, value in sorted((params.get(option) or {}).items()):
            if value is not None and not isinstance(value, kind):
                raise OptionError(option, {host: value}, "each host's value is %s" % what)
            for key, shape in sorted((fields or {}).items()):
                field = value.get(key) if isinstance(value, dict) else None
                if field is not None:
                    _check_field("%s.%s.%s" % (option, host, key), field, *shape)


def _check_field(name, field, kind, item_kind=None, item_keys=()):
    wanted = KIND_WORDS[kind] if item_kind is None else "%s of %s" % (KIND_WORDS[kind], ITEMS_WORDS[item_kind])
    if item_keys:
        wanted += " with %s" % ", ".join(item_keys)
    if not isinstance(field, kind) or item_kind is not None and not all(
            isinstance(item, item_kind) and all(key in item for key in item_keys) for item in field):
        raise OptionError(name, field, "%s, as the module registers it" % wanted)
