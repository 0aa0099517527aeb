"""The etcd gateway client's pure parts: key ranges, the endpoints of the service's configuration."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import etcd_gateway as gw


@given(st.text(alphabet="/abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=20))
def test_the_prefix_range_holds_every_key_under_the_prefix_and_no_other(prefix, rest):
    end = gw.prefix_end(prefix)
    assert prefix.encode() <= (prefix + rest).encode() < end
    # The next key that does not start with the prefix is the end itself.
    assert not end.startswith(prefix.encode())


def test_values_go_through_base64_both_ways():
    assert gw.unb64(gw.b64("/orion/ledger/n1")) == b"/orion/ledger/n1"
    assert gw.unb64(None) == b""


def test_endpoints_of_the_service_configuration():
    assert gw.endpoints_of([{"host": "10.0.0.2", "port": 2379}, {"host": "[fd00::2]", "port": 2379}]) == [
        ("10.0.0.2", 2379), ("[fd00::2]", 2379)]


@pytest.mark.parametrize("raw, expected", [
    ([], "no etcd endpoint is configured"),
    (None, "no etcd endpoint is configured"),
    (["10.0.0.2:2379"], "is not a mapping with a host"),
    ([{"host": "10.0.0.2", "port": 0}], "port 0 is not a TCP port"),
    ([{"host": "10.0.0.2", "port": "2379"}], "port '2379' is not a TCP port"),
    ([{"host": "10.0.0.2", "port": True}], "port True is not a TCP port"),
])
def test_bad_endpoints_are_named(raw, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        gw.endpoints_of(raw)


def test_a_store_without_etcd3gw_says_what_to_install(monkeypatch):
    monkeypatch.setattr(gw, "HAS_ETCD3GW", False)
    with pytest.raises(gw.Unavailable, match="python3-etcd3gw"):
        gw.Store.from_config({"endpoints": [{"host": "10.0.0.2", "port": 2379}]})
