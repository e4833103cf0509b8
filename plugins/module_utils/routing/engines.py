# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which engine answers a host's route lookups: pyroute2 where it is installed, `ip -j` where it is not.

pyroute2 is imported only when its engine is chosen: importing it costs ~100 ms of CPU on a target (its package
imports all of itself), more than a task that needs only `ip -j` spends in all.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.routing.iproute_cli import IpCommand

CHOICES = ("auto", "netlink", "ip")
# V(auto) answers a request of at most this many lookups through `ip -j` where it is installed: a lookup there costs
# one process, ~3 ms, while importing pyroute2 costs 150 ms (0.7.2) to 240 ms (0.9.7) of CPU before its first answer
# (measured on a target here, issue #28). Past it, the batch through one netlink socket is cheaper.
IP_UP_TO = 20


def choose(choice, runner, tables, lookups=None):
    """The engine for `choice`: V(netlink) is pyroute2 (the caller checks netlink.HAS_PYROUTE2 first), V(ip) the
    iproute2 command, V(auto) `ip -j` for a request of at most IP_UP_TO `lookups` where `ip` is installed, else
    pyroute2 when it can be imported, else `ip -j` (one process per lookup: ~700/s against thousands through
    netlink)."""
    if choice == "ip" or (choice == "auto" and lookups is not None and lookups <= IP_UP_TO and runner.which("ip")):
        return IpCommand(runner, tables)
    from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink  # pylint: disable=import-outside-toplevel
    if choice == "auto" and not netlink.HAS_PYROUTE2:
        engine = IpCommand(runner, tables)
        engine.reason = netlink.PYROUTE2_UNSUPPORTED  # a pyroute2 out of range: the result says why it is not used
        return engine
    return netlink.Pyroute2Engine()
