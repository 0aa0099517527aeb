"""Unit tests of the node status table built from the servers' boot reports."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.orionos.diskless.plugins.module_utils import ledger as lg
from ansible_collections.orionos.diskless.plugins.module_utils import node_status as engine

NODES = [{"name": "n2", "macs": ["52:54:00:00:00:02"], "ip": "10.0.0.2"},
         {"name": "n1", "macs": ["52:54:00:00:00:01"], "ip": "10.0.0.1"}]


def report(node, image, result="ok", paths=("A", "A"), **extra):
    body = {"format": 1, "node": node, "image": image, "result": result,
            "reason": "" if result == "ok" else "services not running: x",
            "boot_seconds": 12.5, "primary": "10.0.0.250", "kernel": "6.1.8", "fallback": False,
            "macs": ["52:54:00:00:00:01"], "addresses": ["10.0.0.1/24"],
            "paths": [{"server": "s%d" % i, "device": "7:%d" % i, "loop": "/dev/loop%d" % i, "role": "primary",
                       "rtt_ms": "0.4", "state": state} for i, state in enumerate(paths)],
            "phases": {"network": 1.5, "root": 3.25}}
    body.update(extra)
    return body


def listing(*entries):
    """Lines as the status playbook lists a server's reports: stored time, file name, body."""
    lines = []
    for entry in entries:
        stamp, body = entry[0], entry[1]
        name = entry[2] if len(entry) > 2 else (body.get("node") if isinstance(body, dict) else "n1")
        lines.append("%s %s %s\n" % (stamp, name, body if isinstance(body, str) else json.dumps(body)))
    return "".join(lines)


def metrics(text):
    """{(name, labels): value} of a metrics text, parsed as Prometheus parses it."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_newest_copy_of_each_report_wins_and_missing_nodes_are_listed():
    listings = {"srv1": listing((1000.5, report("n1", "v1"))),
                "srv2": listing((2000.0, report("n1", "v2", paths=("F", "A"))), (5, "not json", "n1"))}
    rows = engine.table(NODES, listings)
    assert [r["node"] for r in rows] == ["n1", "n2"]
    assert rows[0]["image"] == "v2" and rows[0]["paths"] == "1/2" and rows[0]["result"] == "ok"
    assert rows[0]["last_report"] == "1970-01-01T00:33:20Z"
    assert rows[0]["rejected"] == 1 and rows[0]["rejected_reasons"] == ["srv2: the body is not JSON"]
    assert rows[1]["result"] == "never reported" and rows[1]["report"] is None


def test_text_and_metrics():
    rows = engine.table(NODES, {"srv1": listing((10, report("n2", "v1", result="failed")))})
    text = engine.render_text(rows)
    assert text.splitlines()[0].split() == list(engine.COLUMNS)
    assert "failed: services not running: x" in text and "never reported" in text
    found = metrics(engine.render_prometheus(rows))
    assert found[("orion_node_up", (("image", "v1"), ("node", "n2")))] == 0
    assert found[("orion_node_up", (("image", ""), ("node", "n1")))] == 0
    assert found[("orion_node_boot_seconds", (("node", "n2"),))] == 12.5
    assert found[("orion_node_last_report_timestamp_seconds", (("node", "n2"),))] == 10
    assert found[("orion_node_reports_rejected", (("node", "n1"),))] == 0


def test_a_report_naming_another_node_is_refused_and_counted_for_the_file_it_is_in():
    # n2 PUT a body claiming to be n1 into its own file (nginx stores n2.json only from n2's address).
    listings = {"srv1": listing((100, report("n1", "v1", result="failed"))),
                "srv2": listing((200, report("n1", "v9"), "n2"))}
    rows = {row["node"]: row for row in engine.table(NODES, listings)}
    assert rows["n1"]["result"].startswith("failed") and rows["n1"]["image"] == "v1"
    assert rows["n2"]["result"] == "never reported"
    assert rows["n2"]["rejected"] == 1
    assert rows["n2"]["rejected_reasons"] == ["srv2: node 'n1' is not n2, the node the file belongs to"]
    lines = engine.rejected_lines(list(rows.values()), {})
    assert lines == ["rejected report of n2 on srv2: node 'n1' is not n2, the node the file belongs to"]


# Bodies of the wrong shape, each with the field its message names.
BAD_REPORTS = [
    (report("n1", "v1", result="great"), "result 'great' is not one of ok, failed, shutdown"),
    (report("n1", "v1", result=1), "result 1 is not one of"),
    (report("n1", "v1", boot_seconds="12"), "boot_seconds '12' is not a number"),
    (report("n1", "v1", boot_seconds=True), "boot_seconds True is not a number"),
    (report("n1", "v1", boot_seconds=-1), "boot_seconds -1 is not a number from 0"),
    (report("n1", "v1", boot_seconds=float("nan")), "boot_seconds nan is not a number"),
    (report("n1", "../../etc"), "image '../../etc' is not an image version"),
    (dict(report("n1", "v1"), paths="AA"), "paths 'AA' is not a list"),
    (dict(report("n1", "v1"), paths=[{"state": "A", "server": "x\ny"}]), "paths[0].server 'x\\ny' is not text"),
    (dict(report("n1", "v1"), paths=[{"state": "Z"}]), "paths[0].state 'Z' is not one of"),
    (dict(report("n1", "v1"), paths=["A"]), "paths[0] 'A' is not an object"),
    (report("n1", "v1", macs=["zz"]), "macs: malformed MAC address 'zz'"),
    (report("n1", "v1", phases={"root": "3"}), "root '3' is not a number"),
    (report("n1", "v1", phases=[1]), "phases [1] is not an object"),
    (report("n1", "v1", reason="x" * 5000), "reason 'xxxx"),
    (report("n1", "v1", reason="a\u0000b"), "reason 'a\\x00b' is not text"),
    (report("n1", "v1", fallback="yes"), "fallback 'yes' is not true or false"),
    (report("n1", "v1", primary='10.0.0.1"}'), "primary '10.0.0.1\"}' is not text"),
    (report("n1", "v1", kernel="6.1 evil"), "kernel '6.1 evil' is not text"),
    (report("n1", "v1", format=2), "format 2 is not 1"),
    (report("n1", "v1", event="crash"), "event 'crash' is not one of boot, shutdown"),
    (report("n1", "v1", event="shutdown", action="explode"), "action 'explode' is not one of"),
    (report("n1", "v1", previous={"end": "maybe"}), "previous.end 'maybe' is not one of"),
    (report("n1", "v1", previous="clean"), "previous 'clean' is not an object"),
    (report("n1", "v1", addresses=["10.0.0.1/24", {"a": 1}]), "addresses: {'a': 1} is not an address"),
    (report("n1", "v1", macs=["52:54:00:00:00:01"] * 65), "macs ['52:54:00:00:00:01'"),
    ([1, 2], "the body [1, 2] is not a JSON object"),
    ({"node": None}, "node None is not n1"),
]


@pytest.mark.parametrize("body, expected", BAD_REPORTS, ids=[str(i) for i in range(len(BAD_REPORTS))])
def test_a_report_with_a_field_of_the_wrong_type_is_refused_naming_it(body, expected):
    good = listing((50, report("n2", "v1")))
    bad = listing((100, body, "n1"))
    rows = {row["node"]: row for row in engine.table(NODES, {"srv1": good + bad})}
    assert rows["n1"]["result"] == "never reported"
    assert rows["n1"]["rejected"] == 1
    reason = rows["n1"]["rejected_reasons"][0]
    assert expected in reason, reason
    assert len(reason) < 300
    # The other node's report is used, and the metrics parse.
    assert rows["n2"]["result"] == "ok"
    found = metrics(engine.render_prometheus(list(rows.values())))
    assert found[("orion_node_up", (("image", "v1"), ("node", "n2")))] == 1
    assert found[("orion_node_reports_rejected", (("node", "n1"),))] == 1


def test_a_bad_copy_does_not_hide_an_older_good_one():
    listings = {"srv1": listing((100, report("n1", "v1"))),
                "srv2": listing((200, report("n1", "v2", boot_seconds="soon")))}
    row = engine.table(NODES, listings)[0]
    assert row["image"] == "v1" and row["rejected"] == 1


def test_labels_that_would_break_the_text_format_are_escaped():
    rows = engine.table([{"name": 'n"1\\x\nz'}], {})
    found = metrics(engine.render_prometheus(rows))
    assert found[("orion_node_up", (("image", ""), ("node", 'n"1\\x\nz')))] == 0


def test_broken_lines_and_files_of_no_node_are_listed_apart():
    text = "garbage\n12 n9 {\"node\": \"n9\"}\n"
    assert engine.unknown_rejected(NODES, {"srv1": text}) == {
        "": ["srv1: a listing line without a stored time, file name and body"],
        "n9": ["srv1: result None is not one of ok, failed, shutdown"]}


def test_the_previous_boots_end_is_shown():
    body = report("n1", "v2", previous={"end": "clean", "action": "reboot", "image": "v1", "boot_id": "ab-12",
                                        "server": "10.0.0.2"})
    row = engine.table(NODES, {"srv1": listing((5, body))})[0]
    assert row["previous_end"] == "clean reboot" and row["report"]["previous"]["image"] == "v1"


@given(st.text(max_size=300))
def test_any_listing_text_is_read_without_error(text):
    reports, rejected = engine.parse_listing(text)
    for stored, body in reports:
        assert isinstance(stored, float) and isinstance(body["node"], str)
    for name, reason in rejected:
        assert name is None or isinstance(name, str)
        assert isinstance(reason, str)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


@given(st.dictionaries(st.sampled_from(sorted(report("n1", "v1"))), JSON, max_size=8))
def test_any_body_gives_a_row_and_parsable_metrics(changes):
    body = dict(report("n1", "v1"), **changes)
    rows = engine.table(NODES, {"srv1": listing((5, body, "n1")), "srv2": listing((1, report("n2", "v1")))})
    assert rows[0]["rejected"] + (rows[0]["report"] is not None) == 1
    assert rows[1]["result"] == "ok"
    metrics(engine.render_prometheus(rows))


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=4e9), st.sampled_from(["v1", "v2", "v3"])),
                min_size=1, max_size=8))
def test_the_row_is_the_report_stored_last(entries):
    listings = {"srv%d" % i: listing((stamp, report("n1", image))) for i, (stamp, image) in enumerate(entries)}
    row = engine.table(NODES, listings)[0]
    top = max(entry[0] for entry in entries)
    assert row["image"] in {image for stamp, image in entries if stamp == top}


def test_the_ledger_says_why_a_node_does_not_boot_its_target():
    # n1 failed v2 by its own report: the ledger marks v2 bad and n1 boots its last good v1 again.
    entry = {"name": "n1", "image": "v2", "fallback": "v1"}
    ledger = lg.NodeLedger("n1", [lg.Attempt("a" * 32, 1, "n1", "v1", "10.0.0.1", "srv1", 10, 600, state="ok",
                                             reason="ok report", ended=20, booted="v1"),
                                  lg.Attempt("b" * 32, 2, "n1", "v2", "10.0.0.1", "srv1", 30, 600, fallback="v1",
                                             state="failed", reason="report: the node reported a failed boot of v2",
                                             ended=40, booted="v2")],
                           good="v1", good_since=20)
    ledger = lg.with_marks(ledger, lg.new_marks(ledger, lg.Settings(), 50))
    views = {"n1": lg.node_view(ledger, entry, now=60), "n2": lg.node_view(lg.NodeLedger("n2"), {"image": "v1"})}
    rows = {row["node"]: row for row in engine.table(NODES, {"srv1": listing((45, report("n1", "v1")))}, views)}
    n1 = rows["n1"]
    assert (n1["target"], n1["last_good"], n1["verdict"], n1["attempts"]) == ("v2", "v1", "failed bad:v2",
                                                                              "2 (1 failed)")
    assert n1["why"].startswith("v2 is marked bad for n1 (report: the node reported a failed boot of v2)")
    assert rows["n2"]["verdict"] == "none" and rows["n2"]["why"] == ""
    found = metrics(engine.render_prometheus(list(rows.values())))
    assert found[("orion_node_bad_versions", (("node", "n1"),))] == 1
    assert found[("orion_node_rolled_back", (("node", "n1"),))] == 1
    assert found[("orion_node_boot_attempts", (("node", "n1"), ("state", "failed")))] == 1
    assert found[("orion_node_boot_attempts", (("node", "n1"), ("state", "ok")))] == 1
    assert found[("orion_node_rolled_back", (("node", "n2"),))] == 0
    # Without a ledger (no control plane) the columns are empty and no ledger metric is written.
    bare = engine.table(NODES, {}, None)
    assert bare[0]["verdict"] == "" and "orion_node_bad_versions{" not in engine.render_prometheus(bare)
