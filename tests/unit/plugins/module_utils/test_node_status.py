"""Unit tests of the node status table built from the servers' boot reports."""

import json

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import node_status as engine

NODES = [{"name": "n2", "macs": ["52:54:00:00:00:02"], "ip": "10.0.0.2"},
         {"name": "n1", "macs": ["52:54:00:00:00:01"], "ip": "10.0.0.1"}]


def report(node, image, result="ok", paths=("A", "A")):
    return {"node": node, "image": image, "result": result, "reason": "" if result == "ok" else "services not running: x",
            "boot_seconds": 12.5, "primary": "10.0.0.250",
            "paths": [{"server": "s%d" % i, "state": state} for i, state in enumerate(paths)]}


def listing(*entries):
    return "".join("%s %s\n" % (stamp, json.dumps(body)) for stamp, body in entries)


def test_the_newest_copy_of_each_report_wins_and_missing_nodes_are_listed():
    listings = {"srv1": listing((1000.5, report("n1", "v1"))),
                "srv2": listing((2000.0, report("n1", "v2", paths=("F", "A"))), (5, "not json"))}
    rows = engine.table(NODES, listings)
    assert [r["node"] for r in rows] == ["n1", "n2"]
    assert rows[0]["image"] == "v2" and rows[0]["paths"] == "1/2" and rows[0]["result"] == "ok"
    assert rows[0]["last_report"] == "1970-01-01T00:33:20Z"
    assert rows[1]["result"] == "never reported" and rows[1]["report"] is None


def test_text_and_metrics():
    rows = engine.table(NODES, {"srv1": listing((10, report("n2", "v1", result="failed")))})
    text = engine.render_text(rows)
    assert text.splitlines()[0].split() == list(engine.COLUMNS)
    assert "failed: services not running: x" in text and "never reported" in text
    prom = engine.render_prometheus(rows)
    assert 'orion_node_up{node="n2",image="v1"} 0' in prom
    assert 'orion_node_up{node="n1",image=""} 0' in prom
    assert 'orion_node_boot_seconds{node="n2"} 12.5' in prom
    assert 'orion_node_last_report_timestamp_seconds{node="n2"} 10' in prom


@given(st.text(max_size=200))
def test_any_listing_text_is_read_without_error(text):
    for stored, body in engine.parse_listing(text):
        assert isinstance(stored, float) and isinstance(body["node"], str)


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=4e9), st.sampled_from(["v1", "v2", "v3"])),
                min_size=1, max_size=8))
def test_the_row_is_the_report_stored_last(entries):
    listings = {"srv%d" % i: listing((stamp, report("n1", image))) for i, (stamp, image) in enumerate(entries)}
    row = engine.table(NODES, listings)[0]
    top = max(entry[0] for entry in entries)
    assert row["image"] in {image for stamp, image in entries if stamp == top}
