# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set or audit per-interface IP sysctls, at runtime and in one sysctl.d file of ours.

Plain Python: it decides what must change, changes it (unless in check mode),
and returns a dict the module hands back as it is.  Runtime (`state`) and
persistence (`persistent`) are separate, as in community.general's modprobe.
"""

import os

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError, OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf, dropin
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl.boot import BootConfig


class InterfaceSettings:
    def __init__(self, interfaces, settings, path):
        self.interfaces = [conf.check_interface(name) for name in interfaces]
        self.settings = settings
        self.path = path
        self.present = {family: conf.interfaces_present(family) for family in ("ipv4", "ipv6")}

    def concrete(self, family):
        return conf.expand(self.interfaces, self.present[family])

    def runtime(self):
        """{interface: {key: value}} for every concrete interface (all and default included where asked)."""
        values = {}
        for key in self.settings:
            family, name = conf.family_and_name(key)
            for interface in self.concrete(family)[0]:
                values.setdefault(interface, {})[key] = conf.read(family, interface, name)
        return values

    def effective(self):
        """{interface: {key: value}}: what the kernel applies on each real interface."""
        result = {}
        for key in self.settings:
            family, name = conf.family_and_name(key)
            all_value = conf.read(family, "all", name)
            for interface in self.concrete(family)[0]:
                if interface in conf.SPECIAL:
                    continue
                forwarding = conf.read(family, interface, "forwarding")
                result.setdefault(interface, {})[key] = conf.effective(
                    key, all_value, conf.read(family, interface, name), forwarding)
        return result

    def file_lines(self):
        """{sysctl key: value} of the lines this task owns in our file (names and globs as given)."""
        lines = {}
        for key, value in self.settings.items():
            family, name = conf.family_and_name(key)
            for interface in self.interfaces:
                lines[conf.sysctl_key(family, interface, name)] = value
        return lines


def _runtime_text(values):
    return "".join("%s = %s\n" % (conf.sysctl_key(conf.KEYS[key][0], interface, conf.family_and_name(key)[1]),
                                  value)
                   for interface in sorted(values) for key, value in sorted(values[interface].items()))


def configure(task, persistent, missing, check_mode):
    """state=present: set the runtime values of existing interfaces, and our file as `persistent` says."""
    missing_names = sorted(set(n for key in task.settings for n in task.concrete(conf.KEYS[key][0])[1]))
    if missing_names and missing != "persist_only":
        raise OptionError("interfaces", reason="%s does not exist in this network namespace; with missing=persist_only "
                          "only the persistent line is written, for when it appears" % ", ".join(missing_names))
    if missing_names and persistent != "present":
        raise OptionError("missing", "persist_only", "needs persistent=present (got persistent=%s)" % persistent)
    before = task.runtime()
    planned = [(conf.family_and_name(key), interface, task.settings[key], current)
               for interface, values in sorted(before.items()) for key, current in sorted(values.items())
               if current != task.settings[key]]
    # Every runtime key checked writable before anything is written (a read-only /proc/sys, a read-only key): one
    # side applied without the other would be a half-done remediation that reports nothing changed.
    unwritable = [conf.sysctl_key(family, interface, name) for (family, name), interface, _wanted, _current in planned
                  if not os.access(conf.conf_path(family, interface, name), os.W_OK)]
    if unwritable:
        raise HostError("%s: cannot be set at runtime here (/proc/sys read-only, or the key is); nothing was changed"
                        % ", ".join(unwritable))
    # The file first: where it cannot be written (a full or immutable directory), nothing has changed yet.
    file_result, file_changed = _persist(task, persistent, check_mode)
    changed_keys = []
    for done, ((family, name), interface, wanted, _current) in enumerate(planned):
        key = conf.sysctl_key(family, interface, name)
        if not check_mode:
            try:
                conf.write(family, interface, name, wanted)
            except OSError as exc:
                _undo(task, file_result, planned[:done])
                raise HostError("%s: cannot be set to %s: %s; what was changed before it was put back (%s)" % (
                    key, wanted, exc.strerror or exc, ", ".join(file_changed + changed_keys) or "nothing"))
        changed_keys.append(key)
    if check_mode:
        after = {i: {k: task.settings[k] for k in v} for i, v in before.items()}
    else:
        after = task.runtime()
    result = {"changed": False, "before": before, "after": after, "missing": missing_names}
    changed_keys += file_changed
    result.update(changed=bool(changed_keys), changed_keys=changed_keys, persistent_file=file_result,
                  effective=task.effective() if not check_mode else _effective_after(task, after))
    result["diff"] = [
        {"before_header": "runtime (before)", "after_header": "runtime (after)",
         "before": _runtime_text(before), "after": _runtime_text(after)},
        {"before_header": task.path, "after_header": task.path,
         "before": file_result["before_text"] or "", "after": file_result["after_text"] or ""},
    ]
    return result


def _undo(task, file_result, written):
    """Put back the runtime keys a failed configure wrote (`written`, entries of its plan) and the file, as far as
    the host lets us."""
    for (family, name), interface, _wanted, current in written:
        if current is not None:
            try:
                conf.write(family, interface, name, current)
            except OSError:
                pass  # the error raised next names the key that failed; this one stays as set
    if file_result["changed"]:
        try:
            dropin.put_file(task.path, file_result["before_text"])
        except OSError:
            pass


def _effective_after(task, after):
    """In check mode: the effective values as they would be."""
    result = {}
    for key in task.settings:
        family, name = conf.family_and_name(key)
        all_value = after.get("all", {}).get(key, conf.read(family, "all", name))
        for interface, values in after.items():
            if interface not in conf.SPECIAL and key in values:
                result.setdefault(interface, {})[key] = conf.effective(
                    key, all_value, values[key], conf.read(family, interface, "forwarding"))
    return result


def _persist(task, persistent, check_mode):
    if persistent != "ignore":
        dropin.check_not_linked(task.path)
    before = dropin.read_file(task.path)
    result = {"path": task.path, "before_text": before, "after_text": before, "changed": False}
    if persistent == "ignore":
        return result, []
    lines = task.file_lines()
    if persistent == "present":
        after = dropin.updated_file(before, {k: str(v) for k, v in lines.items()}, set())
    else:
        after = dropin.updated_file(before, {}, set(lines)) if before is not None else None
        if after is not None and not dropin.has_keys(after):
            after = None  # nothing of ours left: the file goes
    old, new = dropin.file_values(before), dropin.file_values(after)
    changed_keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    result.update(after_text=after, changed=after != before)
    if result["changed"] and not check_mode:
        try:
            dropin.put_file(task.path, after)
        except OSError as exc:
            raise HostError("%s: cannot be written: %s; nothing was changed" % (task.path, exc.strerror or exc))
    return result, ["file:" + key for key in changed_keys]


def audit(task, expect):
    """state=audit: configured, persisted and effective values per interface, drift, and compliance."""
    text = dropin.read_file(task.path)
    ours = BootConfig([(task.path, text)])
    report, drift, offenders = {}, [], []
    for key in task.settings:
        family, name = conf.family_and_name(key)
        all_value, default_value = conf.read(family, "all", name), conf.read(family, "default", name)
        for interface in task.concrete(family)[0]:
            own = conf.read(family, interface, name)
            persisted = (ours.value(family, interface, name) or (None,))[0]
            entry = {"all": all_value, "default": default_value, "interface": own,
                     "persistent": None if persisted is None else int(persisted)}
            if interface not in conf.SPECIAL:
                entry["effective"] = conf.effective(key, all_value, own,
                                                    conf.read(family, interface, "forwarding"))
            report.setdefault(interface, {})[key] = entry
            if persisted is not None and str(own) != persisted:
                drift.append({"interface": interface, "key": key, "runtime": own, "persistent": int(persisted)})
            wanted = expect.get(key)
            if wanted is not None and "effective" in entry and entry["effective"] not in wanted:
                offenders.append({"interface": interface, "key": key, "effective": entry["effective"],
                                  "expected": wanted})
    return {"changed": False, "interfaces": report, "drift": drift, "compliant": not offenders,
            "offenders": offenders, "persistent_file": {"path": task.path, "values": dropin.file_values(text)}}
