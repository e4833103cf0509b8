"""The release tarball builds, installs offline, and the installed collection documents its modules and asks an
execution environment for nothing the targets need."""

import os
import tarfile

import yaml
from labtools import BIN, ROOT, run


def test_tarball_installs_and_documents_every_module(tmp_path):
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), ROOT])
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    tarball = tmp_path / ("packetpath-linux-%s.tar.gz" % version)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:  # the install line names this tarball
        assert "ansible-galaxy collection install %s " % tarball.name in handle.read()
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/preflight.py" in names and "meta/runtime.yml" in names
    # The reports' schemas, and the action plugin with the templates it renders by default.
    assert {"schemas/diagnosis_report.schema.json", "schemas/audit_report.schema.json",
            "plugins/action/diagnosis_report.py", "roles/diagnose_port/templates/report.md.j2",
            "roles/diagnose_port/templates/report.html.j2"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in (".venv", "build", ".pytest_cache", ".ci", "tools")]

    collections = tmp_path / "collections"
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(collections), str(tarball)])
    installed = collections / "ansible_collections" / "packetpath" / "linux"
    assert (installed / "MANIFEST.json").exists()
    modules = sorted(f[:-3] for f in os.listdir(installed / "plugins" / "modules") if f.endswith(".py"))
    for module in modules:
        doc = run([os.path.join(BIN, "ansible-doc"), "-M", str(installed / "plugins" / "modules"),
                   "packetpath.linux." + module], check=True)
        assert "RETURN VALUES" in doc.stdout and "EXAMPLES" in doc.stdout and "REQUIREMENTS" in doc.stdout, module

    # An execution environment (AWX's) is the controller: ansible-builder finds nothing to add there, and the targets'
    # needs stay in the collection for the prerequisites role (issue #39).
    introspected = yaml.safe_load(run([os.path.join(BIN, "ansible-builder"), "introspect", str(collections)]).stdout)
    assert introspected == {"python": [], "system": []}, introspected
    with open(installed / "requirements.txt", encoding="utf-8") as handle:
        assert "pyroute2" in handle.read()
    with open(installed / "bindep.txt", encoding="utf-8") as handle:
        assert "nftables" in handle.read()
