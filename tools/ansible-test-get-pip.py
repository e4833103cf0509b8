"""Stand-in for the get-pip.py that ansible-test downloads from a host this machine cannot reach.

ansible-test creates each sanity venv without pip, then runs the cached
~/.ansible/test/cache/get_pip_<version>.py with pip's options and the wanted
pip (e.g. `pip==24.2 --no-setuptools --no-wheel`).  This does the same with the
standard library's ensurepip and then PyPI, which is reachable.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + ARGS)
