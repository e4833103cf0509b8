# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which engine answers a host's route lookups: pyroute2 where it is installed, `ip -j` where it is not.

pyroute2 is imported only when its engine is chosen: importing it costs ~100 ms of CPU on a target (its package
imports all of itself), more than a task that needs only `ip -j` spends in all.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.routing.iproute_cli import IpCommand

CHOICES = ("auto", "netlink", "ip")


def choose(choice, runner, tables):
    """The engine for `choice`: V(netlink) is pyroute2 (the caller checks netlink.HAS_PYROUTE2 first), V(ip) the
    iproute2 command, V(auto) pyroute2 when it can be imported, else `ip -j` (one process per lookup: ~700/s
    against thousands through netlink)."""
    if choice == "ip":
        return IpCommand(runner, tables)
    from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink  # pylint: disable=import-outside-toplevel
    if choice == "auto" and not netlink.HAS_PYROUTE2:
        return IpCommand(runner, tables)
    return netlink.Pyroute2Engine()
