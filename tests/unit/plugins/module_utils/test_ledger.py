"""Unit tests of the boot ledger: attempts, verdicts, bad marks and decisions, without etcd or HTTP."""

import json

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import ledger as lg

ENTRY = {"name": "n1", "image": "v2", "fallback": "v1", "groups": ["compute"]}


SEQ = iter(range(1, 10 ** 9))


def minted(node="n1", version="v2", at=100, fallback="v1", address="10.0.0.1", deadline=600):
    return lg.Attempt(lg.new_attempt_id(), next(SEQ), node, version, address, "s1", at, deadline, fallback=fallback)


def run(ledger, events, now):
    """Apply (kind, args) events as the service would: settle, report, mark."""
    for kind, args in events:
        if kind == "script":
            ledger = settle_all(ledger, args["at"], request=True)
            decision = lg.decide(ENTRY, ledger)
            if decision.version is None:
                continue
            attempt = minted(version=decision.version, fallback=decision.fallback, at=args["at"])
            ledger = lg.NodeLedger(ledger.node, ledger.attempts + [attempt], ledger.marks, ledger.good)
        elif kind == "report":
            pending = ledger.pending()
            if not pending:
                continue
            attempt = pending[-1]
            image = attempt.version if not args.get("fallback") or not attempt.fallback else attempt.fallback
            _old, ended, good = lg.take_report(ledger, attempt.id, "10.0.0.1", args["result"], image, args["at"])
            ledger = lg.apply(ledger, [(attempt, ended)])
            if good:
                ledger = lg.NodeLedger(ledger.node, ledger.attempts, ledger.marks, good, args["at"])
            ledger = lg.with_marks(ledger, lg.new_marks(ledger, lg.Settings(), args["at"]))
    return settle_all(ledger, now)


def settle_all(ledger, now, request=False):
    ledger = lg.apply(ledger, lg.settle(ledger, now, request))
    return lg.with_marks(ledger, lg.new_marks(ledger, lg.Settings(), now))


def test_attempt_ids_are_unguessable_and_safe():
    ids = {lg.new_attempt_id() for unused in range(1000)}
    assert len(ids) == 1000
    assert all(lg.valid_attempt_id(i) for i in ids)
    assert not lg.valid_attempt_id("0" * 31)
    assert not lg.valid_attempt_id("../" + "0" * 29)


def test_first_boot_is_a_counted_trial_and_ok_makes_it_good():
    ledger = lg.NodeLedger("n1")
    decision = lg.decide(ENTRY, ledger)
    assert (decision.version, decision.fallback, decision.trial) == ("v2", "v1", True)
    attempt = minted()
    ledger = lg.NodeLedger("n1", [attempt])
    old, ended, good = lg.take_report(ledger, attempt.id, "10.0.0.1", "ok", "v2", 130)
    assert old is attempt and ended.state == "ok" and good == "v2"
    ledger = lg.NodeLedger("n1", [ended], good="v2")
    assert lg.decide(ENTRY, ledger).trial is False


def test_explicit_failure_marks_bad_after_one_report():
    good = lg.NodeLedger("n1", good="v1")
    attempt = minted()
    ledger = lg.NodeLedger("n1", [attempt], good="v1")
    _old, ended, new_good = lg.take_report(ledger, attempt.id, "10.0.0.1", "failed", "v2", 150,
                                           reason="services not running: sshd")
    assert new_good is None and ended.reason.startswith("report")
    ledger = lg.apply(ledger, [(attempt, ended)])
    marks = lg.new_marks(ledger, lg.Settings(), 150)
    assert list(marks) == ["v2"]
    ledger = lg.with_marks(ledger, marks)
    decision = lg.decide(ENTRY, ledger)
    assert decision.version == "v1" and decision.rollback and "marked bad" in decision.reason
    assert lg.decide(ENTRY, good).trial


@pytest.mark.parametrize("cause", ["superseded", "deadline"])
def test_silent_failures_need_two_in_a_row(cause):
    settings = lg.Settings()
    first = minted(at=100)
    ledger = lg.NodeLedger("n1", [first], good="v1")
    if cause == "superseded":
        ledger = lg.NodeLedger("n1", [first, minted(at=160)], good="v1")
        changes = lg.settle(ledger, 170)
        assert [new.reason.split(":")[0] for _o, new in changes] == ["superseded"]
    else:
        assert lg.settle(ledger, 699) == []
        changes = lg.settle(ledger, 700)
        assert changes[0][1].reason.startswith("deadline") and changes[0][1].ended == 700
    ledger = lg.apply(ledger, changes)
    assert lg.new_marks(ledger, settings, 800) == {}
    assert lg.decide(ENTRY, ledger).version == "v2"  # one more try
    second = minted(at=800)
    ledger = lg.NodeLedger("n1", [a for a in ledger.attempts if a.state != "pending"] + [second], good="v1")
    ledger = lg.apply(ledger, lg.settle(ledger, 1400))
    marks = lg.new_marks(ledger, settings, 1400)
    assert list(marks) == ["v2"] and len(marks["v2"].attempts) == 2
    assert lg.decide(ENTRY, lg.with_marks(ledger, marks)).version == "v1"


def test_an_ok_boot_resets_the_count():
    ledger = run(lg.NodeLedger("n1", good="v1"), [
        ("script", {"at": 0}), ("script", {"at": 100}),  # first superseded
        ("report", {"at": 120, "result": "ok"}),
        ("script", {"at": 200}), ("script", {"at": 300}),  # one more silent failure
    ], 310)
    assert not ledger.marks and ledger.good == "v2"


def test_booting_the_fallback_fails_the_attempt_and_makes_the_fallback_good():
    attempt = minted()
    ledger = lg.NodeLedger("n1", [attempt])
    _old, ended, good = lg.take_report(ledger, attempt.id, "10.0.0.1", "ok", "v1", 130)
    assert ended.state == "failed" and ended.reason.startswith("fallback") and good == "v1"


@pytest.mark.parametrize("attempt_id, address, image, match", [
    ("f" * 32, "10.0.0.1", "v2", "not one minted"),
    ("nope", "10.0.0.1", "v2", "not an attempt id"),
    (None, "10.0.0.1", "v2", "not an attempt id"),
    ("OWN", "10.0.0.9", "v2", "minted for address 10.0.0.1"),
    ("OWN", "10.0.0.1", "v9", "not the version"),
])
def test_forged_reports_are_refused(attempt_id, address, image, match):
    attempt = minted()
    ledger = lg.NodeLedger("n1", [attempt])
    with pytest.raises(lg.RefusedReport, match=match):
        lg.take_report(ledger, attempt.id if attempt_id == "OWN" else attempt_id, address, "ok", image, 120)


def test_a_used_attempt_is_refused():
    attempt = minted()
    ledger = lg.NodeLedger("n1", [attempt])
    _old, ended, _good = lg.take_report(ledger, attempt.id, "10.0.0.1", "ok", "v2", 120)
    with pytest.raises(lg.RefusedReport, match="already ended"):
        lg.take_report(lg.apply(ledger, [(attempt, ended)]), attempt.id, "10.0.0.1", "failed", "v2", 130)


def test_another_nodes_attempt_is_unknown_to_this_node():
    other = minted(node="n2", address="10.0.0.2")
    with pytest.raises(lg.RefusedReport, match="not one minted for node n1"):
        lg.take_report(lg.NodeLedger("n1", [minted()]), other.id, "10.0.0.2", "ok", "v2", 120)


def test_read_only_ledger_pauses_trials():
    ledger = lg.NodeLedger("n1", [minted(version="v1", at=1).ended_as("ok", "ok report", 5)], good="v1")
    decision = lg.decide(ENTRY, ledger, writable=False)
    assert decision.version == "v1" and "trials paused" in decision.reason and not decision.trial
    assert lg.decide(ENTRY, ledger).trial


def test_nothing_left_stops():
    ledger = lg.NodeLedger("n1", marks={"v2": lg.Mark("n1", "v2", 1, "x"), "v1": lg.Mark("n1", "v1", 1, "y")})
    decision = lg.decide(ENTRY, ledger)
    assert decision.version is None and "no version" in decision.reason


def test_static_entry_never_names_a_bad_version():
    ledger = lg.NodeLedger("n1", good="v1", marks={"v2": lg.Mark("n1", "v2", 1, "x")})
    static = lg.static_entry(ENTRY, ledger)
    assert static["image"] == "v1" and static["fallback"] is None


def test_settings_are_checked():
    problems = []
    lg.parse_settings({"max_failures": 0, "deadline": "soon", "keep": 5, "group_deadlines": {"gpu": 10, "a b": 60},
                       "extra": 1}, problems)
    text = "\n".join(problems)
    for needle in ("max_failures 0", "deadline soon", "group_deadlines.gpu 10", "'a b'", "unknown field 'extra'"):
        assert needle in text, text
    settings = lg.parse_settings({"group_deadlines": {"gpu": 1200, "cpu": 300}}, [])
    assert settings.deadline_of(["gpu", "cpu"]) == 1200 and settings.deadline_of(["x"]) == lg.DEFAULT_DEADLINE


def test_records_round_trip_and_bad_records_are_named():
    attempt = minted()
    assert lg.attempt_from(json.loads(lg.dumps(attempt))).as_dict() == attempt.as_dict()
    bad = attempt.as_dict()
    bad["version"] = "../etc"
    with pytest.raises(lg.LedgerError, match="version '../etc'"):
        lg.attempt_from(bad)
    bad = attempt.as_dict()
    bad["state"] = "maybe"
    with pytest.raises(lg.LedgerError, match="state 'maybe'"):
        lg.attempt_from(bad)


def test_trimmed_keeps_pending_and_the_newest():
    attempts = [minted(at=i).ended_as("failed", "deadline: x", i + 1) for i in range(30)] + [minted(at=99)]
    ledger = lg.NodeLedger("n1", attempts)
    gone = lg.trimmed(ledger, 20)
    assert len(gone) == 10 and attempts[-1].id not in gone


EVENTS = st.lists(st.one_of(
    st.tuples(st.just("script"), st.fixed_dictionaries({"at": st.integers(0, 10000)})),
    st.tuples(st.just("report"), st.fixed_dictionaries({"at": st.integers(0, 10000),
                                                        "result": st.sampled_from(["ok", "failed"]),
                                                        "fallback": st.booleans()}))), max_size=25)


@hsettings(max_examples=300, deadline=None)
@given(EVENTS, st.sampled_from([None, "v1"]))
def test_property_a_bad_version_is_never_offered_again(events, good):
    events = sorted(events, key=lambda e: e[1]["at"])
    ledger = lg.NodeLedger("n1", good=good)
    seen = set()
    for index in range(len(events)):
        ledger_now = run(ledger, events[:index + 1], events[index][1]["at"])
        decision = lg.decide(ENTRY, ledger_now)
        if decision.version is not None:
            assert not ledger_now.bad(decision.version)
        if decision.fallback is not None:
            assert not ledger_now.bad(decision.fallback) and decision.fallback != decision.version
        static = lg.static_entry(ENTRY, ledger_now)
        assert static["image"] is None or not ledger_now.bad(static["image"])
        # Marks only grow: a version bad once stays bad.
        assert set(ledger_now.marks) >= seen
        seen = set(ledger_now.marks)


@hsettings(max_examples=200, deadline=None)
@given(EVENTS)
def test_property_decisions_depend_only_on_the_ledger(events):
    """Two servers reading the same ledger decide alike (no hidden state)."""
    events = sorted(events, key=lambda e: e[1]["at"])
    ledger = run(lg.NodeLedger("n1", good="v1"), events, 20000)
    copy = lg.NodeLedger("n1", [lg.attempt_from(json.loads(lg.dumps(a))) for a in ledger.attempts],
                         dict(ledger.marks), ledger.good)
    assert lg.decide(ENTRY, ledger).as_dict() == lg.decide(ENTRY, copy).as_dict()
    assert all(a.state != "pending" for a in ledger.attempts)
