"""The etcd gateway client's pure parts: key ranges, the endpoints of the service's configuration, the mirror."""

import json
import threading

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


def test_the_local_member_must_be_one_of_the_endpoints():
    with pytest.raises(ValueError, match="etcd local 2 is not the index of one of the 2 endpoints"):
        gw.Store.from_config({"endpoints": [{"host": "10.0.0.2", "port": 2379}, {"host": "10.0.0.3", "port": 2379}],
                              "local": 2})


# ------------------------------------------------------------------ mirror

class FakeStore:
    """Stands in for the gateway client: a range read and a watch from canned answers."""

    def __init__(self, found=None, revision=5, responses=(), probe_ok=True):
        self.found = found or {}
        self.revision = revision
        self.responses = list(responses)
        self.probe_ok = probe_ok
        self.watched_from = []

    def read_prefix_at(self, prefix, serializable=False, local=False):
        assert local, "the mirror reads its own member only"
        if prefix.endswith("\x00"):
            if not self.probe_ok:
                raise gw.Unavailable("context deadline exceeded")
            return {}, self.revision
        return dict(self.found), self.revision

    def watch(self, prefix, start_revision):
        self.watched_from.append(start_revision)
        yield from self.responses
        raise gw.Unavailable("watch: the member closed the stream")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def put(key, doc, revision):
    return {"kv": {"key": gw.b64(key), "value": gw.b64(json.dumps(doc)), "mod_revision": str(revision)}}


def response(*events, revision=0, **more):
    return {"result": dict({"header": {"revision": str(revision)}, "events": list(events)}, **more)}


def test_the_mirror_answers_only_while_it_watches_and_its_member_confirmed_quorum_lately():
    clock = Clock()
    mirror = gw.Mirror(FakeStore(), "/orion/ledger/", fresh_for=6, clock=clock)
    with pytest.raises(gw.Stale, match="not started"):
        mirror.get("/orion/ledger/n1")
    mirror.load({"/orion/ledger/n1": ({"v": 1}, 4)}, 5)
    with pytest.raises(gw.Stale):
        mirror.get("/orion/ledger/n1")  # watching, but quorum not yet confirmed
    assert mirror.probe() is True
    assert mirror.get("/orion/ledger/n1") == ({"v": 1}, 4)
    assert mirror.get("/orion/ledger/n2") == (None, 0)
    clock.now += 7
    with pytest.raises(gw.Stale, match="older than 6"):
        mirror.get("/orion/ledger/n1")
    mirror.store.probe_ok = False
    assert mirror.probe() is False
    with pytest.raises(gw.Stale, match="did not answer a linearizable read: context deadline exceeded"):
        mirror.get("/orion/ledger/n1")


def test_watch_events_put_and_delete_and_an_ended_watch_empties_the_mirror():
    clock = Clock()
    mirror = gw.Mirror(FakeStore(), "/orion/ledger/", clock=clock)
    mirror.load({"/orion/ledger/n1": ({"v": 1}, 4), "/orion/ledger/n2": ({"v": 1}, 3)}, 5)
    mirror.probe()
    assert mirror.apply(response(revision=5, created=True))
    assert mirror.apply(response(put("/orion/ledger/n1", {"v": 2}, 6),
                                 dict(put("/orion/ledger/n2", {}, 7), type="DELETE"), revision=7))
    assert mirror.get("/orion/ledger/n1") == ({"v": 2}, 6)
    assert mirror.get("/orion/ledger/n2") == (None, 0)
    assert mirror.status()["revision"] == 7 and mirror.status()["events"] == 2
    assert mirror.apply(response(revision=9, canceled=True, compact_revision="8")) is False
    with pytest.raises(gw.Stale, match="compacted at revision 8"):
        mirror.get("/orion/ledger/n1")
    assert mirror.keys == {}
    assert mirror.apply({"error": {"message": "boom"}}) is False
    assert mirror.status()["usable"] is False


def test_the_loop_loads_then_watches_from_the_next_revision_and_starts_over_after_an_error():
    store = FakeStore(found={"/orion/ledger/n1": ({"v": 1}, 4)}, revision=5,
                      responses=[response(revision=5, created=True), response(put("/orion/ledger/n1", {"v": 2}, 6))])
    mirror = gw.Mirror(store, "/orion/ledger/")
    stop = threading.Event()
    seen = []

    def watch(prefix, start_revision):
        seen.append((dict(mirror.keys), mirror.live))
        if len(seen) == 2:
            stop.set()
        yield from FakeStore.watch(store, prefix, start_revision)

    store.watch = watch
    reasons = []
    lost = mirror.lost
    mirror.lost = lambda why: reasons.append(why) or lost(why)
    mirror.run(stop, pause=0)
    assert reasons == ["watch: the member closed the stream", "stopped"]
    assert store.watched_from == [6, 6]
    # Each round starts from the range read: the event of the round before is not kept.
    assert seen == [({"/orion/ledger/n1": ({"v": 1}, 4)}, True)] * 2
    assert mirror.live is False and mirror.why == "stopped" and mirror.resyncs == 2


def test_an_error_without_text_is_named_by_its_kind():
    assert gw.describe(ConnectionError()) == "ConnectionError"
    assert gw.describe(ValueError("x" * 400)) == "x" * 300
