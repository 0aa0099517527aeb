"""The NFS filters wrap module_utils/nfs.py and turn its errors into filter errors."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.filter.nfs import FilterModule

F = FilterModule().filters()


def test_filters_are_registered():
    assert set(F) == {"nfs_export_identity", "nfs_client_errors"}


def test_export_identity_filter():
    ident = F["nfs_export_identity"]("/srv/orion/images")
    assert ident == F["nfs_export_identity"]("/srv/orion/images/")
    with pytest.raises(AnsibleFilterError, match="'relative'"):
        F["nfs_export_identity"]("relative")


def test_client_errors_filter():
    assert F["nfs_client_errors"](["10.0.0.0/24"], ["10.0.0.5"]) == []
    assert F["nfs_client_errors"](["10.9.0.0/24"], ["10.0.0.5"], "exports") == [
        "exports entry 10.9.0.0/24 contains none of the nodes' addresses"]
    with pytest.raises(AnsibleFilterError, match="not a list"):
        F["nfs_client_errors"]("10.0.0.0/24", [])
