"""Unit tests of the kernel fragment check."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import kconfig

FINAL = """#
# Automatically generated file; DO NOT EDIT.
CONFIG_64BIT=y
CONFIG_NFS_FS=y
CONFIG_SQUASHFS=m
CONFIG_LOG_BUF_SHIFT=17
CONFIG_CMDLINE="console=ttyS0"
# CONFIG_MODULES is not set
"""


def test_every_requested_option_held():
    fragments = {"a.config": "# the core\nCONFIG_64BIT=y\n\nCONFIG_SQUASHFS=m\n",
                 "b.config": 'CONFIG_CMDLINE="console=ttyS0"\n# CONFIG_MODULES is not set\nCONFIG_DEBUG_FS=n\n'}
    assert kconfig.unmet(FINAL, fragments) == []


def test_a_dropped_option_names_the_fragment_and_both_values():
    problems = kconfig.unmet(FINAL, {"nfs.config": "CONFIG_NFS_V4=y\nCONFIG_NFS_FS=y\n",
                                     "x.config": "CONFIG_SQUASHFS=y\nCONFIG_LOG_BUF_SHIFT=18\n# CONFIG_64BIT is not set\n"})
    assert problems == [
        "fragment x.config: CONFIG_64BIT should not be set, the final configuration has CONFIG_64BIT=y",
        "fragment x.config: CONFIG_LOG_BUF_SHIFT=18 was dropped; the final configuration has CONFIG_LOG_BUF_SHIFT=17 "
        "(no such option in this kernel, or a dependency is not set)",
        "fragment nfs.config: CONFIG_NFS_V4=y was dropped; the final configuration has it unset "
        "(no such option in this kernel, or a dependency is not set)",
        "fragment x.config: CONFIG_SQUASHFS=y was dropped; the final configuration has CONFIG_SQUASHFS=m "
        "(no such option in this kernel, or a dependency is not set)",
    ]


def test_a_later_fragment_wins():
    assert kconfig.unmet(FINAL, {"a.config": "CONFIG_SQUASHFS=y\n", "b.config": "CONFIG_SQUASHFS=m\n"}) == []


@pytest.mark.parametrize("line", ["CONFIG_FOO", "FOO=y", "CONFIG_FOO = y", "set CONFIG_FOO=y"])
def test_a_malformed_fragment_line_is_named(line):
    with pytest.raises(kconfig.KconfigError) as err:
        kconfig.unmet(FINAL, {"bad.config": "CONFIG_64BIT=y\n%s\n" % line})
    assert "fragment bad.config line 2: %r" % line in str(err.value)


@given(st.dictionaries(st.from_regex(r"CONFIG_[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
                       st.sampled_from(["y", "m", "17", '"text"', None]), max_size=30))
def test_property_a_config_meets_itself_as_a_fragment(options):
    text = "".join("# %s is not set\n" % k if v is None else "%s=%s\n" % (k, v) for k, v in options.items())
    assert kconfig.parse(text) == options
    assert kconfig.unmet(text, {"all.config": text}) == []
