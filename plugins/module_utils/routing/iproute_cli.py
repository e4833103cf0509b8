# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The same lookups through `ip -j route get` and `ip -j rule`: the engine where a netlink socket
cannot be had, and the reference the netlink engine is tested against.

It answers in the netlink engine's terms (interface indexes, table ids, errno),
so everything above it is shared.
"""

import errno
import json
import os
import socket

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import host_prefix_length
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import (
    NUD_STATES,
    PROTOCOL_NUMBERS,
    ROUTE_TYPES,
    TC_H_INGRESS,
    qdisc_direction,
)

# `ip` prints strerror(): turn it back into the number.
_ERRNO_OF = {os.strerror(code): code for code in (
    errno.EINVAL, errno.EXDEV, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.ENODEV, errno.EPERM,
    errno.ENOENT, errno.ESRCH)}


class IpCommand:
    name = "ip"
    reason = None  # why `ip -j` answers where pyroute2 is installed (engines.choose), for the result to say

    def __init__(self, runner, tables):
        self.runner = runner
        self.ip = runner.which("ip")
        self.tables = tables
        self.table_ids = {name: table_id for table_id, name in tables.names.items()}

    def argv(self, lookup, names):
        argv = [self.ip, "-j", "-d", "-6" if lookup.family == "ipv6" else "-4", "route", "get", "to", lookup.dst]
        if lookup.src:
            argv += ["from", lookup.src]
        for option in ("iif", "oif"):
            if getattr(lookup, option) is not None:
                argv += [option, names[getattr(lookup, option)]]
        for option, word in (("mark", "mark"), ("uid", "uid"), ("tos", "tos"), ("proto", "ipproto"),
                             ("sport", "sport"), ("dport", "dport")):
            value = getattr(lookup, option)
            if value:
                argv += [word, str(value)]
        return argv

    def route_get(self, lookups):
        names = dict(socket.if_nameindex())
        answers = []
        for lookup in lookups:
            rc, out, err = self.runner.run(self.argv(lookup, names))
            if rc != 0:
                message = err.strip().split(": ", 1)[-1]
                answers.append((None, _ERRNO_OF.get(message, errno.EIO)))
                continue
            answers.append((self.route(json.loads(out)[0]), None))
        return answers

    def route(self, entry):
        kind = entry.get("type", "unicast")
        table = entry.get("table", "main")
        route = {"type": kind if kind in ROUTE_TYPES else kind, "flags": 0x200 if "cache" in entry else 0,
                 "table_id": self.table_ids.get(table, int(table) if str(table).isdigit() else table)}
        if entry.get("dev"):
            route["oif"] = socket.if_nametoindex(entry["dev"])
        for name in ("gateway", "prefsrc"):
            if entry.get(name):
                route[name] = entry[name]
        return route

    def rules(self, family):
        return [self.rule(entry) for entry in self._json(family, "rule")]

    def rule(self, entry):
        rule = {"priority": entry.get("priority", 0), "not": bool(entry.get("not")), "tos": 0}
        table = entry.get("table")
        rule["action"] = "lookup" if table is not None else entry.get("action", "nop")
        if table is not None:
            rule["table_id"] = self.table_ids.get(table, int(table) if str(table).isdigit() else 0)
        for side in ("src", "dst"):
            if entry.get(side) not in (None, "all"):
                rule[side] = "%s/%s" % (entry[side], entry.get(side + "len", host_prefix_length(entry[side])))
        for name in ("iif", "oif"):
            if entry.get(name):
                rule[name] = entry[name]
        if "fwmark" in entry:
            rule["fwmark"] = int(str(entry["fwmark"]), 0)
            rule["fwmask"] = int(str(entry.get("fwmask", "0xffffffff")), 0)
        if "ipproto" in entry:
            proto = str(entry["ipproto"])
            rule["ip_proto"] = int(proto) if proto.isdigit() else PROTOCOL_NUMBERS.get(proto, proto)
        for name, prefix in (("sport", "sport"), ("dport", "dport"), ("uidrange", "uid")):
            if prefix + "_start" in entry:
                rule[name] = [entry[prefix + "_start"], entry[prefix + "_end"]]
            elif name in entry:  # a single port
                rule[name] = [entry[name], entry[name]]
        return rule

    def _json(self, family, *words):
        family_flag = {"ipv4": ["-4"], "ipv6": ["-6"]}.get(family, [])
        rc, out, err = self.runner.run([self.ip, "-j"] + family_flag + list(words))
        if rc != 0:
            raise OSError(errno.EIO, err.strip())
        return json.loads(out or "[]")

    def neighbours(self, family):
        bits = {name.upper(): bit for bit, name in NUD_STATES.items()}
        return [{"dst": entry.get("dst"), "ifindex": socket.if_nametoindex(entry["dev"]) if entry.get("dev") else 0,
                 "state": sum(bits.get(name, 0) for name in entry.get("state", [])), "lladdr": entry.get("lladdr")}
                for entry in self._json(family, "neigh", "show")]

    def routes(self, family):
        routes = []
        for entry in self._json(family, "route", "show", "table", "all"):
            route = self.route(entry)
            route["flags"] = 0
            destination = entry.get("dst", "default")
            if destination == "default":
                route["dst_len"] = 0
            else:
                address, _slash, length = destination.partition("/")
                route["dst"] = address
                route["dst_len"] = int(length) if length else host_prefix_length(address)
            if "metric" in entry:
                route["metric"] = entry["metric"]
            routes.append(route)
        return routes

    def links(self):
        links = []
        for entry in self._json(None, "-s", "-d", "link", "show"):
            stats = entry.get("stats64") or {}
            flags = entry.get("flags") or []
            kind = (entry.get("linkinfo") or {}).get("info_kind")
            links.append({"ifindex": entry["ifindex"], "name": entry["ifname"], "mac": entry.get("address"),
                          "kind": kind, "vxlan": _vxlan(entry) if kind == "vxlan" else None,
                          "master": _index(entry.get("master")),
                          "admin_up": "UP" in flags,
                          "carrier": "LOWER_UP" in flags, "operstate": entry.get("operstate", "UNKNOWN"),
                          "rx_dropped": (stats.get("rx") or {}).get("dropped", 0),
                          "tx_dropped": (stats.get("tx") or {}).get("dropped", 0), "xdp": "xdp" in entry})
        return links

    def fdb(self):
        bridge = self.runner.which("bridge")
        if not bridge:
            return []  # iproute2 without bridge: no forwarding database is read, and the finding says nothing of it
        rc, out, err = self.runner.run([bridge, "-j", "fdb", "show"])
        if rc != 0:
            raise OSError(errno.EIO, err.strip())
        return [{"ifindex": _index(entry.get("ifname")), "lladdr": entry.get("mac"), "dst": entry.get("dst"),
                 "vni": entry.get("vni"), "port": entry.get("port"), "master": _index(entry.get("master"))}
                for entry in json.loads(out or "[]")]

    def addresses(self):
        return [{"ifindex": entry["ifindex"], "address": info["local"], "prefixlen": info.get("prefixlen"),
                 "dad_failed": bool(info.get("dadfailed"))}
                for entry in self._json(None, "addr", "show") for info in entry.get("addr_info") or [] if "local" in info]

    def qdiscs(self):
        tc = self.runner.which("tc")
        if not tc:
            return []  # iproute2 without tc: no qdisc is read, and the finding says nothing of tc
        rc, out, err = self.runner.run([tc, "-s", "-j", "qdisc", "show"])
        if rc != 0:
            raise OSError(errno.EIO, err.strip())
        qdiscs = []
        for entry in json.loads(out or "[]"):
            parent = TC_H_INGRESS if entry.get("parent") == "ffff:fff1" else 0xFFFFFFFF
            qdiscs.append({"ifindex": socket.if_nametoindex(entry["dev"]), "kind": entry.get("kind"), "parent": parent,
                           "direction": qdisc_direction(parent), "packets": entry.get("packets", 0),
                           "drops": entry.get("drops", 0)})
        return qdiscs


def _index(name):
    """The interface's index in this namespace (`ip -j` and `bridge -j` name the interfaces netlink numbers)."""
    return socket.if_nametoindex(name) if name else None


def _vxlan(entry):
    """{vni, local, group, port, learning, link} of a VXLAN device, as `ip -d -j link` shows it (netlink's names)."""
    data = (entry.get("linkinfo") or {}).get("info_data") or {}
    return {"vni": data.get("id"), "local": data.get("local"), "group": data.get("group") or data.get("remote"),
            "port": data.get("port"), "learning": bool(data.get("learning")), "link": _index(data.get("link"))}
