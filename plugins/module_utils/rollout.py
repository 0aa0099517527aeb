# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phased rollouts as pure functions: the rollout's settings, its waves, its gates, maintenance windows and
the reboot slots (FleetLock's semaphore).

A rollout moves the nodes of one channel to a new version::

    rollouts:
      stable:
        version: 2026.12.0
        waves: [1, 10%, 50%, 100%]       # cumulative: counts first, then percents; the last is 100%
        first_groups: [canary]           # nodes of these groups lead the order
        gate: {failures: 0, soak: 30m}   # failures allowed (a count or a percent), wait after a wave is ok
        concurrency: 1                   # nodes of one group holding a reboot slot at once
        slot_ttl: 30m                    # a slot not given back by then is a failed verdict
        windows:                         # per group; a node of a group with windows reboots only in one
          compute: [{days: [sat, sun], start: "02:00", length: 4h, zone: Europe/Paris}]

Every function takes the time as an argument (seconds since the epoch) and
reads nothing else, so that both boot servers decide alike from what etcd
holds. Problems name the rollout and the field.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = ("version", "waves", "first_groups", "gate", "concurrency", "slot_ttl", "windows")
GATE_KEYS = ("failures", "soak")
WINDOW_KEYS = ("days", "start", "length", "zone")
MAX_SOAK = 7 * 86400
MAX_CONCURRENCY = 1000
_DURATION_RE = re.compile(r"^([0-9]{1,7})([smhd]?)\Z")
_PERCENT_RE = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,2})?)%\Z")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Share:
    """A number of nodes: ``count`` nodes, or ``percent`` of them (rounded up)."""

    __slots__ = ("count", "percent")

    def __init__(self, count=None, percent=None):
        self.count = count
        self.percent = percent

    def of(self, total):
        if self.percent is not None:
            return min(total, int(math.ceil(total * self.percent / 100.0 - 1e-9)))
        return min(total, self.count)

    def __repr__(self):
        if self.percent is not None:
            return "%s%%" % ("%g" % self.percent)
        return str(self.count)

    def __eq__(self, other):
        return isinstance(other, Share) and (self.count, self.percent) == (other.count, other.percent)

    def __hash__(self):
        return hash((self.count, self.percent))


class Window:
    """A maintenance window: on ``days`` (0 = Monday), from ``start`` (minutes after midnight) for ``length``
    minutes, in the time zone ``zone``. A window may run past midnight into the next day."""

    __slots__ = ("days", "start", "length", "zone")

    def __init__(self, days, start, length, zone):
        self.days = frozenset(days)
        self.start = start
        self.length = length
        self.zone = zone

    def _openings(self, now):
        """The window's openings around ``now`` (aware datetimes), from the day before it to a week after."""
        tz = zoneinfo.ZoneInfo(self.zone)
        today = datetime.datetime.fromtimestamp(now, tz).date()
        for offset in range(-1, 9):
            day = today + datetime.timedelta(days=offset)
            if day.weekday() in self.days:
                local = datetime.datetime(day.year, day.month, day.day, self.start // 60, self.start % 60, tzinfo=tz)
                yield local.timestamp()

    def is_open(self, now):
        return any(start <= now < start + self.length * 60 for start in self._openings(now))

    def next_open(self, now):
        """``now`` when the window is open, else the time it opens next."""
        if self.is_open(now):
            return now
        return min(start for start in self._openings(now) if start > now)


class Rollout:
    """A checked rollout of one channel."""

    __slots__ = ("channel", "version", "waves", "first_groups", "failures", "soak", "concurrency", "slot_ttl",
                 "windows")

    def __init__(self, channel, version, waves, first_groups=(), failures=None, soak=0, concurrency=1,
                 slot_ttl=1800, windows=None):
        self.channel = channel
        self.version = version
        self.waves = list(waves)
        self.first_groups = tuple(first_groups)
        self.failures = failures or Share(count=0)
        self.soak = soak
        self.concurrency = concurrency
        self.slot_ttl = slot_ttl
        self.windows = dict(windows or {})


# ------------------------------------------------------------------ parsing

def parse_duration(value, field, problems, maximum):
    """Seconds from an int or a string such as ``30s``, ``10m``, ``4h``, ``1d``; None (and a problem) if bad."""
    if isinstance(value, bool):
        match = None
    elif isinstance(value, int):
        match = _DURATION_RE.match(str(value)) if value >= 0 else None
    else:
        match = _DURATION_RE.match(value) if isinstance(value, str) else None
    seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else None
    if seconds is None or seconds > maximum:
        problems.append("%s %s is not a duration from 0 to %d s (such as 30m, 4h, 1d)"
                        % (field, fields.quote(value), maximum))
        return None
    return seconds


def parse_share(value, field, problems, zero=False):
    """A Share from a count (an int) or a percent (``"10%"``); None (and a problem) if bad."""
    low = 0 if zero else 1
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= 1000000:
        return Share(count=value)
    match = _PERCENT_RE.match(value) if isinstance(value, str) else None
    if match and low <= float(match.group(1)) <= 100 and (zero or float(match.group(1)) > 0):
        return Share(percent=float(match.group(1)))
    problems.append("%s %s is not a number of nodes (%d or more) or a percent (such as 10%%)"
                    % (field, fields.quote(value), low))
    return None


def parse_window(raw, where, problems):
    """A Window from ``{days, start, length, zone}``; None (and problems naming the field) if bad."""
    if not isinstance(raw, dict):
        problems.append("%s %s is not a mapping with days, start, length and zone" % (where, fields.quote(raw)))
        return None
    count = len(problems)
    for key in sorted(set(raw) - set(WINDOW_KEYS), key=str):
        problems.append("%s: unknown field %s (known: %s)" % (where, fields.quote(key), ", ".join(WINDOW_KEYS)))
    days = raw.get("days", "daily")
    if days == "daily":
        days = list(DAYS)
    if not isinstance(days, list) or not days or not all(isinstance(d, str) and d.lower() in DAYS for d in days):
        problems.append("%s: days %s is not a list of %s (or daily)" % (where, fields.quote(days), ", ".join(DAYS)))
        days = []
    start = raw.get("start")
    match = _TIME_RE.match(start) if isinstance(start, str) else None
    if not match:
        problems.append("%s: start %s is not a time HH:MM (00:00 to 23:59)" % (where, fields.quote(start)))
    length = parse_duration(raw.get("length"), "%s: length" % where, problems, 7 * 86400)
    if length is not None and not 60 <= length:
        problems.append("%s: length %s is shorter than a minute" % (where, fields.quote(raw.get("length"))))
    zone = raw.get("zone", "UTC")
    if zoneinfo is None:
        problems.append("%s: time zones need Python 3.9 or later (zoneinfo)" % where)
    else:
        try:
            if not isinstance(zone, str) or not zone or zone.startswith("/") or ".." in zone:
                raise ValueError(zone)
            zoneinfo.ZoneInfo(zone)
        except (ValueError, KeyError, OSError, zoneinfo.ZoneInfoNotFoundError):
            problems.append("%s: zone %s is not a known time zone (such as UTC or Europe/Paris)"
                            % (where, fields.quote(zone)))
    if len(problems) != count:
        return None
    return Window([DAYS.index(d.lower()) for d in days], int(match.group(1)) * 60 + int(match.group(2)),
                  length // 60, zone)


def parse_waves(raw, where, problems):
    """The waves as cumulative Shares: counts first, each larger than the one before, then percents, each
    larger, the last 100%."""
    if not isinstance(raw, list) or not raw:
        problems.append("%s: waves %s is not a list such as [1, 10%%, 100%%]" % (where, fields.quote(raw)))
        return []
    waves = []
    for index, value in enumerate(raw):
        share = parse_share(value, "%s: waves[%d]" % (where, index), problems)
        if share is None:
            return []
        if waves:
            last = waves[-1]
            if share.count is not None and (last.percent is not None or share.count <= last.count):
                problems.append("%s: waves[%d] %s does not come after %s (waves are cumulative: counts first, "
                                "growing, then percents, growing)" % (where, index, share, last))
                return []
            if share.percent is not None and last.percent is not None and share.percent <= last.percent:
                problems.append("%s: waves[%d] %s does not come after %s (waves are cumulative and grow)"
                                % (where, index, share, last))
                return []
        waves.append(share)
    if waves[-1].percent != 100:
        problems.append("%s: waves do not add up: the last wave is %s, not 100%%" % (where, waves[-1]))
        return []
    return waves


def parse_rollouts(raw, channels, images, problems):
    """{channel: Rollout} from the policy's ``rollouts``; ``channels`` as the policy model parsed them
    ({name: {arch or None: version}}), ``images`` {version: Image} (None: versions taken on trust)."""
    rollouts = {}
    if raw is None:
        return rollouts
    if not isinstance(raw, dict):
        problems.append("policy.rollouts %s is not a mapping of channel -> rollout" % fields.quote(raw))
        return rollouts
    for channel in sorted(raw, key=str):
        where = "rollout of channel %s" % channel
        item = raw[channel]
        if channel not in channels:
            problems.append("policy.rollouts: %s is not a channel of the policy" % fields.quote(channel))
            continue
        if not isinstance(item, dict):
            problems.append("%s: %s is not a mapping" % (where, fields.quote(item)))
            continue
        count = len(problems)
        for key in sorted(set(item) - set(KEYS), key=str):
            problems.append("%s: unknown field %s (known: %s)" % (where, fields.quote(key), ", ".join(KEYS)))
        version = item.get("version")
        current = channels[channel]
        if not store.valid_version(version):
            problems.append("%s: version %s is not a valid version name" % (where, fields.quote(version)))
        elif version in current.values():
            problems.append("%s: version %s is already the channel's version" % (where, version))
        elif images is not None:
            if version not in images:
                problems.append("%s: version %s is not in the image store" % (where, version))
            else:
                arches = {images[v].arch for v in current.values() if v in images}
                arches |= {arch for arch in current if arch is not None}
                if arches and images[version].arch not in arches:
                    problems.append("%s: version %s is an image for %s; the channel's nodes run %s"
                                    % (where, version, images[version].arch, ", ".join(sorted(arches))))
        waves = parse_waves(item.get("waves", ["100%"]), where, problems)
        first = item.get("first_groups", [])
        if not isinstance(first, list) or not all(fields.is_identifier(g) for g in first):
            problems.append("%s: first_groups %s is not a list of group names" % (where, fields.quote(first)))
            first = []
        gate = item.get("gate", {})
        failures, soak = Share(count=0), 0
        if not isinstance(gate, dict):
            problems.append("%s: gate %s is not a mapping with failures and soak" % (where, fields.quote(gate)))
        else:
            for key in sorted(set(gate) - set(GATE_KEYS), key=str):
                problems.append("%s: gate: unknown field %s (known: %s)"
                                % (where, fields.quote(key), ", ".join(GATE_KEYS)))
            failures = parse_share(gate.get("failures", 0), "%s: gate: failures" % where, problems, zero=True)
            soak = parse_duration(gate.get("soak", 0), "%s: gate: soak" % where, problems, MAX_SOAK)
        concurrency = item.get("concurrency", 1)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or \
                not 1 <= concurrency <= MAX_CONCURRENCY:
            problems.append("%s: concurrency %s is not a number from 1 to %d"
                            % (where, fields.quote(concurrency), MAX_CONCURRENCY))
        slot_ttl = parse_duration(item.get("slot_ttl", "30m"), "%s: slot_ttl" % where, problems, 86400)
        if slot_ttl is not None and slot_ttl < 60:
            problems.append("%s: slot_ttl %s is shorter than a minute" % (where, fields.quote(item.get("slot_ttl"))))
        windows = {}
        raw_windows = item.get("windows", {})
        if not isinstance(raw_windows, dict):
            problems.append("%s: windows %s is not a mapping of group -> list of windows"
                            % (where, fields.quote(raw_windows)))
            raw_windows = {}
        for group in sorted(raw_windows, key=str):
            value = raw_windows[group]
            if not fields.is_identifier(group):
                problems.append("%s: windows: %s is not a group name" % (where, fields.quote(group)))
                continue
            if not isinstance(value, list) or not value:
                problems.append("%s: windows: %s: %s is not a list of windows" % (where, group, fields.quote(value)))
                continue
            windows[group] = [parse_window(w, "%s: windows: %s[%d]" % (where, group, i), problems)
                              for i, w in enumerate(value)]
        if len(problems) == count:
            rollouts[channel] = Rollout(channel, version, waves, first, failures, soak, concurrency, slot_ttl,
                                        windows)
    return rollouts


# ------------------------------------------------------------------ waves

def order(rollout, nodes):
    """The nodes (``{name: groups}``) in the rollout's order: those of ``first_groups`` first, each part by a
    stable hash of the name (seeded by the channel and version, so a new rollout draws a new order)."""
    seed = "%s\0%s" % (rollout.channel, rollout.version)

    def key(name):
        lead = any(group in rollout.first_groups for group in nodes[name] or ())
        return (not lead, hashlib.sha256(("%s\0%s" % (seed, name)).encode("utf-8")).hexdigest(), name)

    return sorted(nodes, key=key)


def plan(rollout, nodes):
    """The waves as lists of node names, in order; each node is in one wave, empty waves are left out."""
    ordered = order(rollout, nodes)
    waves, done = [], 0
    for share in rollout.waves:
        upto = max(done, share.of(len(ordered)))
        if upto > done:
            waves.append(ordered[done:upto])
            done = upto
    if done < len(ordered):  # pragma: no cover - the last wave is 100%
        waves.append(ordered[done:])
    return waves


# States of a node in a rollout.
WAITING, REBOOTING, OK, FAILED = "waiting", "rebooting", "ok", "failed"


def gate(rollout, waves, opened, states, now):
    """Where the rollout stands: ``(action, wave, why)``.

    ``waves`` from ``plan``; ``opened`` how many waves are open (the first opens at the start); ``states``
    ``{node: (state, since)}`` of the nodes of the open waves (a node not there is waiting). ``action``:
    ``pause`` (the failures are beyond the budget: nothing more is offered), ``open`` (the next wave may
    open now), ``wait`` (the open waves are not all ok, or soaking), ``done`` (every wave is open and ok).
    """
    opened = max(1, min(opened, len(waves)))
    inside = [name for wave in waves[:opened] for name in wave]
    failed = sorted(name for name in inside if states.get(name, (WAITING, 0))[0] == FAILED)
    allowed = rollout.failures.of(len(inside))
    if len(failed) > allowed:
        return "pause", opened, "%d failed (%s), more than the %s allowed" % (
            len(failed), ", ".join(failed[:10]) + (", ..." if len(failed) > 10 else ""), rollout.failures)
    pending = [name for name in inside if states.get(name, (WAITING, 0))[0] != OK and name not in failed]
    if pending:
        return "wait", opened, "%d of wave %d not ok yet" % (len(pending), opened)
    last_ok = max((states[name][1] for name in inside if name not in failed), default=now)
    if now < last_ok + rollout.soak:
        return "wait", opened, "wave %d soaks until %d" % (opened, last_ok + rollout.soak)
    if opened >= len(waves):
        return "done", opened, "every wave is ok"
    return "open", opened + 1, "wave %d ok for %d s" % (opened, now - last_ok)


def window_open(rollout, groups, now):
    """(open, the time the node may reboot next): a node of no group with windows may reboot any time;
    otherwise when one of its groups' windows is open."""
    windows = [w for group in groups or () for w in rollout.windows.get(group, [])]
    if not windows:
        return True, now
    nxt = min(w.next_open(now) for w in windows)
    return nxt == now, nxt


# ------------------------------------------------------------------ reboot slots (FleetLock)

def acquire(slots, node, group, limit, now, ttl):
    """Grant ``node`` a reboot slot of ``group`` if fewer than ``limit`` are held there.

    ``slots``: ``{node: {"group", "since", "expires"}}`` (the semaphore as etcd holds it). Returns
    ``(slots, granted, why)``; a node that holds a slot has it again (FleetLock's pre-reboot is
    idempotent). An expired slot still counts: it is a failed verdict until an operator or the node's
    ok report ends it, so a rollout whose node hangs stops instead of going on.
    """
    if node in slots:
        return slots, True, "holds a slot of %s since %d" % (slots[node]["group"], slots[node]["since"])
    held = sorted(name for name, slot in slots.items() if slot["group"] == group)
    if len(held) >= limit:
        return slots, False, "the %d slot%s of %s %s held by %s" % (
            limit, "" if limit == 1 else "s", group, "is" if limit == 1 else "are", ", ".join(held))
    new = dict(slots)
    new[node] = {"group": group, "since": now, "expires": now + ttl}
    return new, True, "granted a slot of %s until %d" % (group, now + ttl)


def release(slots, node):
    """``slots`` without ``node``'s (the node reported ok, or an operator ended it)."""
    if node not in slots:
        return slots
    return {name: slot for name, slot in slots.items() if name != node}


def expired(slots, now):
    """The nodes whose slot expired: each a failed verdict, named in status."""
    return sorted(name for name, slot in slots.items() if slot["expires"] <= now)
