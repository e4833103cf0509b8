# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the engine runs programs on a host.

The engine never imports AnsibleModule: it is handed a runner.  Modules pass
ModuleCommandRunner; scripts outside Ansible (the lab's probes of both engines, the benches) ProcessRunner; unit
tests pass a runner that replays recorded output.
"""

import os
import shutil
import subprocess

# Parsers read the tools' English output, and its times in UTC (nft reads and prints a rule's `meta time` in the
# process's local time: our rules' expiry is written and read in UTC, whatever the host's zone).
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "TZ": "UTC"}


class ModuleCommandRunner:
    """Runs argv lists (never a shell) through AnsibleModule, in the C locale."""

    def __init__(self, module):
        self._module = module

    def which(self, name):
        return self._module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])

    def run(self, argv, data=None):
        """Return (rc, stdout, stderr); a missing program is rc 127, not an exception."""
        return self._module.run_command(argv, data=data, environ_update=C_LOCALE, check_rc=False)


class ProcessRunner:
    """Runs argv lists (never a shell) as processes of its own, in the C locale: the same answers outside a module."""

    def which(self, name):
        return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))

    def run(self, argv, data=None):
        done = subprocess.run(argv, input=data, capture_output=True, text=True, check=False,
                              env=dict(os.environ, **C_LOCALE))
        return done.returncode, done.stdout, done.stderr
