"""Phased rollouts: settings, waves, gates, maintenance windows and reboot slots, without etcd or HTTP."""

import calendar
import datetime

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import rollout as ro
from ansible_collections.orionos.diskless.plugins.module_utils.boot_policy import Image

IMAGES = {"2026.11.0": Image("2026.11.0"), "2026.12.0": Image("2026.12.0"),
          "2026.12.0a": Image("2026.12.0a", arch="aarch64")}
CHANNELS = {"stable": {None: "2026.11.0"}, "canary": {None: "2026.11.0"}}
GOOD = {"version": "2026.12.0", "waves": [1, "10%", "50%", "100%"], "first_groups": ["canary"],
        "gate": {"failures": 1, "soak": "30m"}, "concurrency": 1, "slot_ttl": "20m",
        "windows": {"compute": [{"days": ["sat", "sun"], "start": "02:00", "length": "4h", "zone": "Europe/Paris"}]}}


def parse(raw):
    problems = []
    found = ro.parse_rollouts(raw, CHANNELS, IMAGES, problems)
    return problems, found


def utc(*parts):
    return float(calendar.timegm(datetime.datetime(*parts).timetuple()))


def test_a_good_rollout():
    problems, found = parse({"stable": GOOD})
    assert problems == []
    r = found["stable"]
    assert (r.version, r.waves, r.first_groups, r.failures, r.soak, r.concurrency, r.slot_ttl) == (
        "2026.12.0", [ro.Share(count=1), ro.Share(percent=10), ro.Share(percent=50), ro.Share(percent=100)],
        ("canary",), ro.Share(count=1), 1800, 1, 1200)
    window = r.windows["compute"][0]
    assert (sorted(window.days), window.start, window.length, window.zone) == ([5, 6], 120, 240, "Europe/Paris")
    # Defaults: one wave of everything, no failure allowed, no soak, one node at a time, 30 minute slots.
    problems, found = parse({"canary": {"version": "2026.12.0"}})
    r = found["canary"]
    assert problems == [] and (r.waves, r.failures, r.soak, r.concurrency, r.slot_ttl, r.windows) == (
        [ro.Share(percent=100)], ro.Share(count=0), 0, 1, 1800, {})


@pytest.mark.parametrize("change, expected", [
    ({"version": "2026.13.0"}, "rollout of channel stable: version 2026.13.0 is not in the image store"),
    ({"version": "2026.11.0"}, "rollout of channel stable: version 2026.11.0 is already the channel's version"),
    ({"version": "2026.12.0a"}, "version 2026.12.0a is an image for aarch64; the channel's nodes run x86_64"),
    ({"version": "../x"}, "version '../x' is not a valid version name"),
    ({"waves": [1, "10%", "50%"]}, "waves do not add up: the last wave is 50%, not 100%"),
    ({"waves": ["50%", "10%", "100%"]}, "waves[1] 10% does not come after 50%"),
    ({"waves": [5, 2, "100%"]}, "waves[1] 2 does not come after 5"),
    ({"waves": ["10%", 5, "100%"]}, "waves[1] 5 does not come after 10%"),
    ({"waves": [0, "100%"]}, "waves[0] 0 is not a number of nodes (1 or more) or a percent"),
    ({"waves": ["150%"]}, "waves[0] '150%' is not a number of nodes"),
    ({"waves": []}, "waves [] is not a list such as [1, 10%, 100%]"),
    ({"gate": {"failures": "101%"}}, "gate: failures '101%' is not a number of nodes (0 or more) or a percent"),
    ({"gate": {"failures": -1}}, "gate: failures -1 is not a number of nodes"),
    ({"gate": {"soak": "8d"}}, "gate: soak '8d' is not a duration from 0 to 604800 s"),
    ({"gate": {"soak": "soon"}}, "gate: soak 'soon' is not a duration"),
    ({"gate": {"budget": 1}}, "gate: unknown field 'budget' (known: failures, soak)"),
    ({"concurrency": 0}, "concurrency 0 is not a number from 1 to 1000"),
    ({"concurrency": True}, "concurrency True is not a number from 1 to 1000"),
    ({"slot_ttl": "10s"}, "slot_ttl '10s' is shorter than a minute"),
    ({"first_groups": "canary"}, "first_groups 'canary' is not a list of group names"),
    ({"speed": 3}, "unknown field 'speed'"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], days=["someday"])]}},
     "windows: compute[0]: days ['someday'] is not a list of mon, tue, wed, thu, fri, sat, sun (or daily)"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], start="25:00")]}},
     "windows: compute[0]: start '25:00' is not a time HH:MM (00:00 to 23:59)"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], zone="Mars/Olympus")]}},
     "windows: compute[0]: zone 'Mars/Olympus' is not a known time zone"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], zone="../../etc/passwd")]}},
     "windows: compute[0]: zone '../../etc/passwd' is not a known time zone"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], length="30s")]}},
     "windows: compute[0]: length '30s' is shorter than a minute"),
    ({"windows": {"compute": [dict(GOOD["windows"]["compute"][0], every="week")]}},
     "windows: compute[0]: unknown field 'every'"),
    ({"windows": {"compute": []}}, "windows: compute: [] is not a list of windows"),
    ({"windows": ["compute"]}, "windows ['compute'] is not a mapping of group -> list of windows"),
])
def test_bad_rollouts_are_refused_naming_the_field(change, expected):
    problems, found = parse({"stable": dict(GOOD, **change)})
    assert found == {}
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith("rollout of channel stable") for problem in problems)


def test_a_rollout_needs_a_channel_of_the_policy():
    problems, found = parse({"nightly": GOOD})
    assert found == {} and problems == ["policy.rollouts: 'nightly' is not a channel of the policy"]
    assert parse(["stable"])[0] == ["policy.rollouts ['stable'] is not a mapping of channel -> rollout"]


def nodes_of(count, canaries=()):
    return {"n%03d" % i: ["canary"] if "n%03d" % i in canaries else ["compute"] for i in range(count)}


def test_waves_are_cumulative_and_canaries_lead():
    r = parse({"stable": GOOD})[1]["stable"]
    nodes = nodes_of(20, canaries=("n007", "n013"))
    waves = ro.plan(r, nodes)
    assert [len(w) for w in waves] == [1, 1, 8, 10]
    assert set(waves[0] + waves[1]) == {"n007", "n013"}
    assert ro.plan(r, nodes) == waves
    # Another version draws another order.
    other = ro.Rollout("stable", "2026.12.1", r.waves)
    assert ro.order(other, nodes_of(20)) != ro.order(ro.Rollout("stable", "2026.12.0", r.waves), nodes_of(20))


@given(st.integers(min_value=0, max_value=300),
       st.lists(st.one_of(st.integers(min_value=1, max_value=50),
                          st.integers(min_value=1, max_value=99).map(lambda p: "%d%%" % p)), max_size=5))
def test_every_node_is_in_exactly_one_wave(count, raw_waves):
    problems = []
    waves = ro.parse_waves(raw_waves + ["100%"], "w", problems)
    if problems:
        return
    planned = ro.plan(ro.Rollout("stable", "v1", waves), nodes_of(count))
    names = [name for wave in planned for name in wave]
    assert sorted(names) == sorted(nodes_of(count)) and all(planned)
    assert len(planned) <= len(waves)


def state(*pairs):
    return dict(pairs)


def test_the_gate_opens_waves_soaks_and_pauses_beyond_the_budget():
    r = ro.Rollout("stable", "v2", [ro.Share(count=1), ro.Share(percent=100)], failures=ro.Share(count=0), soak=600)
    waves = [["a"], ["b", "c"]]
    assert ro.gate(r, waves, 1, {}, 1000)[:2] == ("wait", 1)
    assert ro.gate(r, waves, 1, state(("a", (ro.REBOOTING, 900))), 1000)[:2] == ("wait", 1)
    soaking = ro.gate(r, waves, 1, state(("a", (ro.OK, 900))), 1000)
    assert soaking[:2] == ("wait", 1) and "soaks until 1500" in soaking[2]
    assert ro.gate(r, waves, 1, state(("a", (ro.OK, 900))), 1500)[:2] == ("open", 2)
    both = state(("a", (ro.OK, 900)), ("b", (ro.OK, 1600)), ("c", (ro.FAILED, 1700)))
    paused = ro.gate(r, waves, 2, both, 1800)
    assert paused[0] == "pause" and "1 failed (c), more than the 0 allowed" in paused[2]
    lenient = ro.Rollout("stable", "v2", r.waves, failures=ro.Share(percent=50), soak=0)
    assert ro.gate(lenient, waves, 2, both, 1800)[:2] == ("done", 2)


def test_a_failed_canary_pauses_before_anybody_else_is_offered_the_version():
    r = ro.Rollout("stable", "v2", [ro.Share(count=1), ro.Share(percent=100)])
    action, wave, why = ro.gate(r, [["a"], ["b"]], 1, state(("a", (ro.FAILED, 10))), 20)
    assert (action, wave) == ("pause", 1) and "a" in why


def test_windows_open_close_and_cross_midnight_in_their_zone():
    weekend = ro.Window([5, 6], 2 * 60, 4 * 60, "Europe/Paris")
    saturday_3am_paris = utc(2026, 12, 12, 2, 0)  # 03:00 in Paris (UTC+1)
    assert weekend.is_open(saturday_3am_paris)
    assert not weekend.is_open(utc(2026, 12, 12, 5, 0))  # 06:00 Paris: closed at 06:00
    assert not weekend.is_open(utc(2026, 12, 11, 2, 0))  # a Friday
    assert weekend.next_open(utc(2026, 12, 11, 2, 0)) == utc(2026, 12, 12, 1, 0)
    night = ro.Window([4], 23 * 60, 3 * 60, "UTC")  # Friday 23:00 to Saturday 02:00
    assert night.is_open(utc(2026, 12, 12, 1, 30)) and not night.is_open(utc(2026, 12, 12, 2, 0))
    # Summer time: 02:00 local is 00:00 UTC in July.
    assert ro.Window(range(7), 2 * 60, 60, "Europe/Paris").is_open(utc(2026, 7, 4, 0, 30))
    r = ro.Rollout("stable", "v2", [ro.Share(percent=100)], windows={"compute": [weekend]})
    assert ro.window_open(r, ["compute"], saturday_3am_paris) == (True, saturday_3am_paris)
    assert ro.window_open(r, ["compute"], utc(2026, 12, 11, 2, 0)) == (False, utc(2026, 12, 12, 1, 0))
    assert ro.window_open(r, ["storage"], 5.0) == (True, 5.0)


def test_a_slot_is_granted_up_to_the_limit_again_to_its_holder_and_an_expired_one_still_counts():
    slots, granted, why = ro.acquire({}, "a", "compute", 1, 100, 600)
    assert granted and slots["a"] == {"group": "compute", "since": 100, "expires": 700}
    assert ro.acquire(slots, "a", "compute", 1, 200, 600)[1] is True
    refused = ro.acquire(slots, "b", "compute", 1, 200, 600)
    assert refused[1] is False and "the 1 slot of compute is held by a" in refused[2]
    assert ro.acquire(slots, "c", "storage", 1, 200, 600)[1] is True
    assert ro.expired(slots, 700) == ["a"]
    assert ro.acquire(slots, "b", "compute", 1, 800, 600)[1] is False  # fail closed: a hung node keeps it
    assert ro.acquire(ro.release(slots, "a"), "b", "compute", 1, 800, 600)[1] is True


@hsettings(max_examples=200)
@given(st.integers(min_value=1, max_value=3),
       st.lists(st.tuples(st.sampled_from(["srv1", "srv2"]), st.sampled_from(["acquire", "release"]),
                          st.sampled_from(["a", "b", "c", "d", "e"]), st.sampled_from(["g1", "g2"])),
                max_size=60))
def test_two_servers_never_grant_more_slots_than_the_limit(limit, steps):
    """Each server reads the semaphore, decides, and writes only if nobody wrote since (etcd's compare)."""
    store = {"rev": 0, "slots": {}}
    seen = {"srv1": (0, {}), "srv2": (0, {})}
    for server, op, node, group in steps:
        rev, slots = seen[server]
        new = ro.acquire(slots, node, group, limit, 0, 60)[0] if op == "acquire" else ro.release(slots, node)
        if new is not slots and store["rev"] == rev:
            store = {"rev": rev + 1, "slots": new}
        seen[server] = (store["rev"], store["slots"])  # a failed compare reads again
        for each in ("g1", "g2"):
            assert sum(1 for slot in store["slots"].values() if slot["group"] == each) <= limit
