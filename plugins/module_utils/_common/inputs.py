# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of option values that Ansible's argument spec cannot express, shared by the modules: each refuses the
value before anything is touched, naming the option (OptionError)."""

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError


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


def check_per_host(params, options, kind=dict):
    """Refuse a per-host mapping (host name -> a registered module result, or with kind=list a list of changes)
    whose value is of another kind: the controller modules read them key by key, and text there would end in a
    traceback."""
    what = "a registered module result (a mapping)" if kind is dict else "a list"
    for option in options:
        for host, value in sorted((params.get(option) or {}).items()):
            if value is not None and not isinstance(value, kind):
                raise OptionError(option, {host: value}, "each host's value is %s" % what)
