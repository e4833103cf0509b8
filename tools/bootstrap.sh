#!/usr/bin/env bash
# Make this machine ready for `make test` / `make demo`: Debian packages, then the pinned venv.
# Safe to run again: it installs only what is missing and reuses a venv built from the same pins.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}

# program -> Debian package that ships it
declare -A needs=(
  [iptables-legacy]=iptables [xtables-monitor]=iptables [nft]=nftables [ip]=iproute2
  [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
  [sysctl]=procps [tar]=tar [git]=git [shellcheck]=shellcheck [chromium]=chromium
  [unshare]=util-linux [sudo]=sudo  # the fleet tests: a host without tools, and runs with become
  [bpftrace]=bpftrace [tc]=iproute2  # the kernel's drop reasons (optional on a target, proved in the lab); tc labs
  [strace]=strace  # the fault matrix: a module killed at each of its steps (strace's fault injection)
  [debootstrap]=debootstrap  # the Debian 11/12/13 roots of a mixed fleet's hosts (tests/lab/pplab/roots.py)
)
missing=()
for program in "${!needs[@]}"; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$program" >/dev/null 2>&1 || missing+=("${needs[$program]}")
done
# The lab's hosts run modules with the system Python: pyroute2 for route lookups, jmespath for `query`.
/usr/bin/python3 -c 'import pyroute2' >/dev/null 2>&1 || missing+=(python3-pyroute2)
/usr/bin/python3 -c 'import jmespath' >/dev/null 2>&1 || missing+=(python3-jmespath)
# The prerequisites role's check mode on a lab host: Ansible's apt module needs python3-apt for it.
/usr/bin/python3 -c 'import apt' >/dev/null 2>&1 || missing+=(python3-apt)
"$python" -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: missing Debian packages: ${packages[*]}" >&2
    echo "bootstrap: install them as root (apt-get install ${packages[*]}) and run make again" >&2
    exit 1
  fi
  echo "bootstrap: installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: $python is $("$python" -V 2>&1); the controller needs Python 3.11 or newer (set PYTHON=...)" >&2
  exit 1
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "bootstrap: building $venv from requirements-dev.txt"
# `make` puts the venv first on PATH: resolve python3 (through the venv's link) before the venv goes.
python=$(readlink -f "$(command -v "$python")")
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
echo "$want" > "$stamp"
