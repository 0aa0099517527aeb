"""Offline stand-in for the pip bootstrap script ansible-test downloads.

ansible-test creates an empty virtual environment per sanity test and runs a
bootstrap script (normally fetched from a host this network cannot reach) to
put pip into it. This script does the same with the standard library's
ensurepip, then installs the requested pip version from the package index.
Installed by `make sanity` as ~/.ansible/test/cache/get_pip_<version>.py.
"""

import ensurepip
import os
import subprocess
import sys

# Options that only the upstream bootstrap script understands.
BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    # ensurepip points PIP_CONFIG_FILE at /dev/null; keep the caller's pip
    # configuration (index, certificates) for the real install.
    env = dict(os.environ)
    env.pop("GET_PIP", None)
    ensurepip.bootstrap(upgrade=True)
    args = [arg for arg in sys.argv[1:] if arg not in BOOTSTRAP_ONLY]
    # Run pip in a fresh interpreter: this one has the bundled pip loaded.
    cmd = [sys.executable, "-m", "pip", "install", "--upgrade"] + args
    sys.exit(subprocess.call(cmd, env=env))


if __name__ == "__main__":
    main()
