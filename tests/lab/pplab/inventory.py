"""The Ansible inventory lab-up writes: every managed host over real SSH."""

import yaml

from .state import path


def write(topology, filename):
    hosts = {}
    by_backend = {}
    for host in topology.managed_hosts:
        hosts[host.name] = {
            "ansible_host": host.mgmt_address,
            "packetpath_lab_netns": host.netns,
            "packetpath_lab_backend": host.backend,
        }
        by_backend.setdefault("lab_" + host.backend, {"hosts": {}})["hosts"][host.name] = None
    document = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": path("id_ed25519"),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                # A lab-only ControlPath directory, so lab-down can close the masters it finds there.
                "ansible_control_path_dir": path("cp"),
                "packetpath_lab_topology": topology.name,
            },
            "children": dict({topology.name: {"hosts": {name: None for name in hosts}}}, **by_backend),
            "hosts": hosts,
        }
    }
    with open(filename, "w", encoding="utf-8") as handle:
        handle.write("# Written by lab-up; removed by lab-down.\n")
        yaml.safe_dump(document, handle, default_flow_style=False, sort_keys=False)
