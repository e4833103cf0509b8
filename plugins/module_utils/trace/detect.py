# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What `iptables --version` says about the backend behind the `iptables` command."""

import re

# "iptables v1.8.9 (nf_tables)", "iptables v1.8.9 (legacy)", or before 1.8 just "iptables v1.6.1".
_VERSION_LINE = re.compile(r"^ip6?tables v(?P<version>[0-9][0-9.]*)(?: \((?P<flavour>[a-z_]+)\))?", re.MULTILINE)

FLAVOUR_BACKEND = {"legacy": "iptables_legacy", "nf_tables": "iptables_nft"}


def parse_iptables_version(text):
    """Return (version, backend) from `iptables --version`; (None, None) when unrecognised.

    iptables before 1.8 printed no flavour: it was always the legacy backend.
    """
    match = _VERSION_LINE.search(text or "")
    if not match:
        return None, None
    return match.group("version"), FLAVOUR_BACKEND.get(match.group("flavour") or "legacy")
