"""The release tarball builds, installs offline, and the installed collection documents its modules."""

import os
import tarfile

from labtools import BIN, ROOT, run


def test_tarball_installs_and_documents_every_module(tmp_path):
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), ROOT])
    tarball = tmp_path / "packetpath-linux-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/preflight.py" in names and "meta/runtime.yml" in names
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
