"""Print the Debian mirror this machine's apt sources name (the first one).

    python3 tests/rig/apt-mirror.py [SUITE]

With SUITE (e.g. bookworm), only entries listing that suite count. The rules
are the source_cache module's for the mirror entry ``apt``
(plugins/module_utils/source_cache.py: apt_mirrors). Exits 1, naming the
files read, when the sources name no http(s) mirror.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collections"))

from ansible_collections.orionos.diskless.plugins.module_utils import source_cache  # noqa: E402


def main(argv):
    suite = argv[1] if len(argv) > 1 else None
    try:
        print(source_cache.apt_mirrors(suite=suite)[0])
    except source_cache.SourceError as exc:
        print("apt-mirror: %s (set ORION_DEBIAN_MIRROR): %s" % (exc, "; ".join(exc.problems)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
