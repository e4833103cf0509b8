# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is strict reverse-path filtering safe on an interface?  Only if the route back to every network that
sends to it leaves through that same interface.

Strict mode (rp_filter=1) drops a packet whose source this host would route
back out of another interface: the seed incident, where replies to the
management network left via a-srv while requests came in on b-srv.  The
check asks the kernel the same question it asks itself (a lookup towards the
source, as fib_validate_source does) for the first and last address of each
network, and names the interface the reply would take.
"""

import fnmatch
import ipaddress

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf


def check(strict_sources):
    """{interface or glob: [IPv4 networks]}, validated; the message names the option and the value."""
    if not isinstance(strict_sources or {}, dict):
        raise OptionError("strict_sources", strict_sources,
                          "a mapping of interface names or globs to lists of networks")
    checked = {}
    for interface, networks in (strict_sources or {}).items():
        conf.check_interface(interface, "strict_sources")
        if not isinstance(networks, list) or not networks:
            raise OptionError("strict_sources.%s" % interface, networks, "a list of networks such as 198.51.100.0/24")
        parsed = []
        for network in networks:
            try:
                value = ipaddress.ip_network(str(network), strict=False)
            except ValueError:
                raise OptionError("strict_sources.%s" % interface, reason="%r is not a network" % (network,))
            if value.version != 4:
                raise OptionError("strict_sources.%s" % interface,
                                  reason="%s is IPv6; rp_filter filters IPv4 only" % network)
            parsed.append(value)
        checked[interface] = parsed
    return checked


def networks_for(strict_sources, interface):
    found = []
    for pattern, networks in strict_sources.items():
        if pattern == interface or (conf.is_glob(pattern) and fnmatch.fnmatchcase(interface, pattern)):
            found.extend(network for network in networks if network not in found)
    return found


def _probe_addresses(network):
    if network.num_addresses <= 2:
        return [str(network[0]), str(network[-1])] if network.num_addresses == 2 else [str(network[0])]
    return [str(network[1]), str(network[-2])]


def conflicts(router, interface, networks):
    """Where the route back from a listed network does not leave via `interface`: what strict mode would drop."""
    found = []
    for network in networks:
        addresses = _probe_addresses(network)
        for address, answer in zip(addresses, router.lookup([{"dst": address} for address in addresses])):
            back = None if "error" in answer else answer["dev"]
            if back != interface:
                found.append({
                    "interface": interface, "network": str(network), "address": address, "route_back_dev": back,
                    "route_back": answer.get("ip_route_get") or answer["error"]["explanation"],
                    "message": "strict rp_filter on %s would drop packets from %s: the route back to %s %s" % (
                        interface, network, address,
                        "leaves via %s" % back if back else "does not exist (%s)" % answer["error"]["name"])})
                break
    return found
