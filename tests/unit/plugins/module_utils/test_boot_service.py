"""The boot service's decisions on script requests, reports and deadlines, without etcd or HTTP."""

import json
import re

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import boot_service as svc
from ansible_collections.orionos.diskless.plugins.module_utils import ledger as lg
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import settings as engine

RAW_CONFIG = {"format": 1, "server": "srv1", "root": "/srv/orion", "table": "/srv/orion/boot/nodes/resolution.json",
              "static_dir": "/srv/orion/boot/ledger", "reports_dir": "/srv/orion/reports/boot",
              "servers": ["10.0.0.10", "10.0.0.2"], "script": {"failure": "reboot", "failure_delay": 30},
              "ledger": {"max_failures": 2, "deadline": 600}}
CONFIG = svc.Config(RAW_CONFIG)
ENTRY = {"name": "n1", "macs": ["52:54:00:00:00:01"], "ip": "10.0.0.101", "groups": ["compute"], "image": "v2",
         "fallback": "v1", "kernel_args": ["quiet"], "profile": "default", "rule": "default"}
TABLE = {"n1": ENTRY, "n2": dict(ENTRY, name="n2", macs=["52:54:00:00:00:02"], ip="10.0.0.102")}
ADDRESS = ENTRY["ip"]


def attempt_of(script):
    found = re.findall(r"orion\.attempt=([0-9a-f]+)", script)
    return found[0] if found else None


def images_in(script):
    """The versions a script tries, in order (each is tried from every server)."""
    found = re.findall(r"orion\.image=([A-Za-z0-9._+-]+)", script)
    return sorted(set(found), key=found.index)


def report(attempt, result="ok", image="v2", node="n1", **more):
    return dict({"format": 1, "node": node, "event": "boot", "result": result, "image": image, "attempt": attempt,
                 "reason": "" if result == "ok" else "services not running: x"}, **more)


def request(ledger, now, address=ADDRESS):
    served = svc.serve(ENTRY, ledger, CONFIG, {}, now, address)
    return served, served.ledger or ledger


def test_config_problems_are_named():
    with pytest.raises(svc.ConfigError, match="server 'a b' is not a host name"):
        svc.Config(dict(RAW_CONFIG, server="a b"))
    with pytest.raises(svc.ConfigError, match="ledger: max_failures 0 is not in 1-100"):
        svc.Config(dict(RAW_CONFIG, ledger={"max_failures": 0}))
    with pytest.raises(svc.ConfigError, match="failure"):
        svc.Config(dict(RAW_CONFIG, script={"failure": "explode"}))
    with pytest.raises(svc.ConfigError, match="static_dir"):
        svc.Config(dict(RAW_CONFIG, static_dir="../x"))


@pytest.mark.parametrize("filename, node", [
    ("n1.ipxe", "n1"), ("52-54-00-00-00-02.ipxe", "n2"), ("52-54-00-00-00-09.ipxe", None), ("../n1.ipxe", None),
    ("n1", None), ("N1.ipxe", "n1"), ("x" * 200 + ".ipxe", None), ("resolution.json", None)])
def test_a_script_name_is_a_node_or_nothing(filename, node):
    assert svc.node_for(TABLE, filename) == node


def test_a_request_from_the_node_is_an_attempt_with_an_id_on_the_command_line():
    served, ledger = request(lg.NodeLedger("n1"), 100)
    assert served.counted == "counted"
    assert attempt_of(served.script) == served.attempt.id
    assert "panic=10" in served.script
    assert images_in(served.script) == ["v2", "v1"]
    assert [a.state for a in ledger.attempts] == ["pending"]
    assert ledger.attempts[0].address == ADDRESS and ledger.attempts[0].server == "srv1"
    assert lg.from_doc("n1", json.loads(svc.dumps(ledger))).attempts[0].id == served.attempt.id


def test_a_request_from_another_address_does_not_use_up_the_nodes_attempts():
    ledger = lg.NodeLedger("n1")
    for at in range(100, 110):
        served, ledger = request(ledger, at, address="10.0.0.66")
        assert served.ledger is None and served.attempt is None
        assert attempt_of(served.script) is None and "not counted" in served.counted
    assert ledger.attempts == []


def test_a_read_only_ledger_gives_the_last_good_version_and_counts_nothing():
    served, ledger = request(lg.NodeLedger("n1"), 100)
    ledger = svc.take_report(ledger, "n1", report(served.attempt.id, image="v2"), ADDRESS, CONFIG, 120).ledger
    trial = dict(ENTRY, image="v3", fallback="v2")
    ro = svc.serve(trial, ledger, CONFIG, {}, 200, ADDRESS, writable=False)
    assert ro.ledger is None and images_in(ro.script)[0] == "v2"
    assert "trials paused" in ro.decision.reason


def test_a_node_that_comes_back_twice_without_reporting_rolls_back_to_its_last_good_version():
    ledger = lg.NodeLedger("n1", good="v1", good_since=50)
    served, ledger = request(ledger, 100)
    assert served.decision.trial and images_in(served.script)[0] == "v2"
    served, ledger = request(ledger, 200)  # a panic: the node asks again
    assert images_in(served.script)[0] == "v2"
    served, ledger = request(ledger, 300)  # and again: two failures in a row
    assert images_in(served.script) == ["v1"]
    assert served.decision.rollback
    assert "2 failed attempts in a row" in ledger.marks["v2"].reason
    # The version stays bad for this node, however often it asks.
    for at in (400, 500, 600):
        served, ledger = request(ledger, at)
        assert "v2" not in images_in(served.script)


def test_an_explicit_failed_report_rolls_back_at_once_and_a_cleared_mark_offers_the_version_again():
    ledger = lg.NodeLedger("n1", good="v1", good_since=50)
    served, ledger = request(ledger, 100)
    taken = svc.take_report(ledger, "n1", report(served.attempt.id, "failed"), ADDRESS, CONFIG, 130)
    assert taken.outcome == "applied"
    ledger = taken.ledger
    assert "v2" in ledger.marks
    served, ledger = request(ledger, 200)
    assert images_in(served.script) == ["v1"]
    served, ledger = request(svc.clear(ledger, "v2"), 300)
    assert images_in(served.script)[0] == "v2"


def test_a_hang_fails_at_the_deadline():
    served, ledger = request(lg.NodeLedger("n1", good="v1"), 100)
    assert svc.sweep(ledger, CONFIG, 500) is None
    swept = svc.sweep(ledger, CONFIG, 700)
    assert swept.attempts[-1].state == "failed" and swept.attempts[-1].reason.startswith("deadline")


def test_an_ok_report_makes_the_version_good_and_repeats_are_duplicates():
    served, ledger = request(lg.NodeLedger("n1", good="v1"), 100)
    body = report(served.attempt.id)
    taken = svc.take_report(ledger, "n1", body, ADDRESS, CONFIG, 130)
    assert taken.outcome == "applied" and taken.ledger.good == "v2" and taken.ledger.good_since == 130
    again = svc.take_report(taken.ledger, "n1", body, ADDRESS, CONFIG, 140)
    assert again.outcome == "duplicate" and again.ledger is None


@pytest.mark.parametrize("body, address, expected", [
    (report, "10.0.0.66", "was minted for address 10.0.0.101, not 10.0.0.66"),
    (lambda a: report("0" * 32), ADDRESS, "is not one minted for node n1"),
    (lambda a: report(a, node="n2"), ADDRESS, "node 'n2' is not n1"),
    (lambda a: report(a, image="v9"), ADDRESS, "image 'v9' is not the version (v2) or the fallback (v1)"),
    (lambda a: report("../" + a[3:]), ADDRESS, "attempt '../"),
    (lambda a: report(a, result="great"), ADDRESS, "result 'great' is not one of"),
])
def test_forged_reports_are_refused(body, address, expected):
    served, ledger = request(lg.NodeLedger("n1"), 100)
    taken = svc.take_report(ledger, "n1", body(served.attempt.id), address, CONFIG, 130)
    assert taken.outcome == "refused" and taken.ledger is None
    assert expected in taken.reason, taken.reason


def test_a_stale_attempt_is_refused():
    first, ledger = request(lg.NodeLedger("n1"), 100)
    unused, ledger = request(ledger, 200)
    taken = svc.take_report(ledger, "n1", report(first.attempt.id), ADDRESS, CONFIG, 230)
    assert taken.outcome == "duplicate"  # superseded: already ended as failed


def test_reports_without_an_attempt_and_shutdown_reports_are_ignored():
    ledger = lg.NodeLedger("n1")
    assert svc.take_report(ledger, "n1", report(""), ADDRESS, CONFIG, 1).outcome == "ignored"
    shutdown = report("", result="shutdown", event="shutdown", action="reboot")
    assert svc.take_report(ledger, "n1", shutdown, ADDRESS, CONFIG, 1).outcome == "ignored"


def test_every_version_bad_gives_a_script_that_says_so():
    ledger = lg.NodeLedger("n1", marks={v: lg.Mark("n1", v, 1, "x") for v in ("v1", "v2")})
    served, unused = request(ledger, 100)
    assert served.attempt is None and "no image left that is not marked bad" in served.script
    assert "no image left" in svc.static_script(ENTRY, ledger, CONFIG, {})


def test_old_attempts_are_trimmed_to_keep():
    config = svc.Config(dict(RAW_CONFIG, ledger={"keep": 3, "max_failures": 100}))
    ledger = lg.NodeLedger("n1")
    for at in range(100, 2000, 100):
        ledger = svc.serve(ENTRY, ledger, config, {}, at, ADDRESS).ledger
    assert len(ledger.attempts) == 4  # 3 ended and the pending one
    assert ledger.attempts[-1].state == "pending"


EVENTS = st.lists(st.tuples(st.sampled_from(["request", "ok", "failed", "fallback", "foreign", "wait"]),
                            st.integers(1, 900)), max_size=30)


@hsettings(max_examples=200, deadline=None)
@given(EVENTS)
def test_no_script_names_a_version_marked_bad_and_foreign_requests_change_nothing(events):
    ledger = lg.NodeLedger("n1", good="v1", good_since=1)
    now = 10
    last = None
    for kind, step in events:
        now += step
        if kind in ("request", "foreign"):
            before = svc.dumps(ledger)
            served, ledger = request(ledger, now, ADDRESS if kind == "request" else "10.0.0.66")
            for version in images_in(served.script):
                assert not ledger.bad(version)
            if kind == "foreign":
                assert svc.dumps(ledger) == before
            else:
                last = served.attempt
        elif kind == "wait":
            ledger = svc.sweep(ledger, CONFIG, now) or ledger
        elif last is not None:
            image = last.fallback if kind == "fallback" else last.version
            taken = svc.take_report(ledger, "n1", report(last.id, "failed" if kind == "failed" else "ok",
                                                         image=image or last.version), ADDRESS, CONFIG, now)
            ledger = taken.ledger or ledger
        static = svc.static_script(ENTRY, ledger, CONFIG, {})
        for version in images_in(static):
            assert not ledger.bad(version)
        assert lg.from_doc("n1", json.loads(svc.dumps(ledger))).marks.keys() == ledger.marks.keys()


GOOD_SETTINGS = {"port": 8740, "root": "/srv/orion", "ledger": {"max_failures": 2}, "etcd_timeout": 2,
                 "endpoints": ["10.0.0.2:2379", "[fd00::3]:2379"], "report_interval": 2, "sweep_interval": 15}


def test_the_role_settings():
    problems, derived = engine.boot_service("srv1", GOOD_SETTINGS)
    assert problems == []
    assert derived["endpoints"] == [{"host": "10.0.0.2", "port": 2379}, {"host": "fd00::3", "port": 2379}]
    assert derived["local"] is None
    assert engine.boot_service("srv2", dict(GOOD_SETTINGS, own="FD00::3"))[1]["local"] == 1
    assert engine.boot_service("srv1", dict(GOOD_SETTINGS, own="10.0.0.2"))[1]["local"] == 0
    problems, unused = engine.boot_service("srv1", dict(GOOD_SETTINGS, port=0, endpoints=["x:1", "10.0.0.2"],
                                                        ledger={"deadline": 5}, sweep_interval=0))
    assert problems == ["boot_service_port 0 is not a TCP port (1-65535)",
                        "boot_service_ledger: deadline 5 is not in 30-86400",
                        "boot_service_etcd_endpoints[0] 'x' is not an IPv4 or IPv6 address",
                        "boot_service_etcd_endpoints[1] '10.0.0.2' is not host:port",
                        "boot_service_sweep_interval 0 is not in 1-3600"]


def rolled_back():
    """A ledger of n1 with v2 marked bad after an explicit failed report."""
    ledger = lg.NodeLedger("n1", good="v1", good_since=50)
    served, ledger = request(ledger, 100)
    return svc.take_report(ledger, "n1", report(served.attempt.id, "failed"), ADDRESS, CONFIG, 130).ledger


def test_the_operator_clears_a_mark_and_a_second_clear_changes_nothing():
    docs = {"n1": lg.to_doc(rolled_back())}
    plan = svc.admin_plan(docs, TABLE, ["n1"], "cleared", "v2")
    changes = svc.admin_changes(plan, docs, "cleared")
    assert list(changes) == ["n1"]
    after = json.loads(changes["n1"])
    assert after["marks"] == {} and after["good"] == "v1" and after["attempts"] == docs["n1"]["attempts"]
    served, unused = request(lg.from_doc("n1", after), 200)
    assert images_in(served.script)[0] == "v2"
    again = {"n1": after}
    assert svc.admin_changes(svc.admin_plan(again, TABLE, ["n1"], "cleared", "v2"), again, "cleared") == {}
    # Clearing a version that has no mark changes nothing either.
    assert svc.admin_changes(svc.admin_plan(docs, TABLE, ["n1"], "cleared", "v9"), docs, "cleared") == {}


def test_present_only_reads_and_absent_forgets_only_the_nodes_named():
    docs = {"n1": lg.to_doc(rolled_back()), "n2": lg.to_doc(lg.NodeLedger("n2", good="v2"))}
    plan = svc.admin_plan(docs, TABLE, [], "present")
    assert sorted(plan) == ["n1", "n2"] and svc.admin_changes(plan, docs, "present") == {}
    assert plan["n1"][1].marks["v2"]
    assert svc.admin_changes(svc.admin_plan(docs, TABLE, ["n2"], "absent"), docs, "absent") == {"n2": None}
    # A node of the policy without a ledger has nothing to forget.
    assert svc.admin_changes(svc.admin_plan({}, TABLE, ["n2"], "absent"), {}, "absent") == {}


@pytest.mark.parametrize("names, state, version, expected", [
    (["n9"], "present", None, "node 'n9' is neither in the policy's table nor in the ledger"),
    (["n1"], "absent", "v2", "version 'v2' is only for state=cleared"),
    (["n1"], "cleared", "../v2", "version '../v2' is not an image version"),
    (["n1"], "frozen", None, "state 'frozen' is not one of present, cleared, absent"),
])
def test_bad_operator_arguments_are_named_before_any_change(names, state, version, expected):
    docs = {"n1": lg.to_doc(rolled_back())}
    with pytest.raises(svc.AdminError) as info:
        svc.admin_plan(docs, TABLE, names, state, version)
    assert expected in info.value.problems


def test_a_damaged_ledger_is_shown_but_only_forgotten_not_cleared():
    docs = {"n1": {"format": 1, "node": "n1", "attempts": "many"}}
    assert svc.admin_plan(docs, TABLE, ["n1"], "present")["n1"] == (None, None)
    assert svc.admin_changes(svc.admin_plan(docs, TABLE, ["n1"], "present"), docs, "present") == {}
    with pytest.raises(svc.AdminError, match="forget it with state=absent"):
        svc.admin_plan(docs, TABLE, ["n1"], "cleared")
    assert svc.admin_changes(svc.admin_plan(docs, TABLE, ["n1"], "absent"), docs, "absent") == {"n1": None}


def test_a_counted_script_arms_the_watchdog_for_the_deadline_and_only_a_trial_reboots_on_failure():
    served, ledger = request(lg.NodeLedger("n1", good="v1", good_since=50), 100)
    assert served.decision.trial
    kernels = [line for line in served.script.splitlines() if line.startswith("kernel ")]
    target = [line for line in kernels if "orion.image=v2" in line]
    assert target and all("orion.watchdog=600" in line and "orion.trial=1" in line for line in target)
    # The fallback of a trial is marked as such (the node does not reboot when it fails).
    assert all("orion.fallback=1" in line for line in kernels if "orion.image=v1" in line)
    taken = svc.take_report(ledger, "n1", report(served.attempt.id), ADDRESS, CONFIG, 130)
    served, unused = request(taken.ledger, 200)
    assert not served.decision.trial and "orion.watchdog=600" in served.script and "orion.trial" not in served.script
    # Not counted: no watchdog, no trial.
    served = svc.serve(ENTRY, taken.ledger, CONFIG, {}, 300, "10.0.0.66")
    assert "orion.watchdog" not in served.script and "panic=10" not in served.script
    # A deadline beyond what a watchdog card takes is capped.
    long = svc.Config(dict(RAW_CONFIG, ledger={"deadline": 86400}))
    served = svc.serve(ENTRY, lg.NodeLedger("n1"), long, {}, 100, ADDRESS)
    assert "orion.watchdog=%d" % svc.WATCHDOG_MAX in served.script
