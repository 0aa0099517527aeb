# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot policy as the fleet model parses it: channels, ordered rules, the default.

``parse_policy()`` checks a policy mapping against the published images
(None: versions are taken on trust) and returns the channels, the rules and
the default as ``Rule`` objects; every problem names the channel or rule and
the field. Which image a node then boots is the policy engine's work
(plugins/module_utils/boot_policy.py), which takes these objects as they are.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet.model import as_list as _as_list

try:
    import netaddr
except ImportError:  # pragma: no cover - fields.require_netaddr() reports it
    netaddr = None

ARCHES = fields.ARCHES
FIRMWARES = fields.FIRMWARES
SELECTORS = ("mac", "name", "group", "label", "subnet", "arch", "firmware")
RULE_KEYS = ("name", "match", "percent", "seed", "channel", "image", "fallback", "kernel_args", "profile")
DEFAULT_KEYS = ("channel", "image", "fallback", "kernel_args", "profile")
_GLOB_RE = re.compile(r"^[A-Za-z0-9*?\[\]!_.-]{1,253}\Z")


def stable_bucket(name, seed=""):
    """Return the 0-99 bucket of ``name`` for ``seed``.

    The first 8 bytes of sha256(seed NUL name) modulo 100: stable across
    runs, machines and Python versions, and independent between seeds.
    """
    digest = hashlib.sha256(("%s\0%s" % (seed, name)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


class Rule:
    """A checked policy rule (the default is a rule without selectors)."""

    __slots__ = ("index", "label", "match", "percent", "seed", "channel", "image", "fallback",
                 "kernel_args", "profile", "subnets")

    def __init__(self, index, label, match, percent, seed, channel, image, kernel_args, profile,
                 fallback=None):
        self.index = index
        self.label = label
        self.match = match
        self.percent = percent
        self.seed = seed
        self.channel = channel
        self.image = image
        self.fallback = fallback
        self.kernel_args = kernel_args
        self.profile = profile
        self.subnets = [netaddr.IPNetwork(str(s)) for s in match.get("subnet", [])]

    def selects(self, node):
        """True when every selector of the rule matches ``node``."""
        match = self.match
        if "mac" in match and not set(match["mac"]) & set(node.macs):
            return False
        if "name" in match and not any(fnmatch.fnmatchcase(node.name, g) for g in match["name"]):
            return False
        if "group" in match and not set(match["group"]) & set(node.groups):
            return False
        if "label" in match and any(node.labels.get(k) != v for k, v in match["label"].items()):
            return False
        if "subnet" in match and (node.ip is None or not any(
                node.ip.version == net.version and node.ip in net for net in self.subnets)):
            return False
        if "arch" in match and node.arch not in match["arch"]:
            return False
        if "firmware" in match and node.firmware not in match["firmware"]:
            return False
        return True

    def takes(self, node):
        """True when the rule decides for ``node`` (selectors and percent slice)."""
        if not self.selects(node):
            return False
        if self.percent is None or self.percent >= 100:
            return True
        return stable_bucket(node.name, self.seed) < self.percent

    def is_catch_all(self):
        return not self.match and (self.percent is None or self.percent >= 100)


def _parse_match(where, raw, problems):
    match = {}
    if raw is None:
        return match
    if not isinstance(raw, dict):
        problems.append("%s: match %r is not a mapping of selectors" % (where, raw))
        return match
    for key in sorted(raw):
        values = raw[key]
        field = "%s: match.%s" % (where, key)
        if key not in SELECTORS:
            problems.append("%s: unknown selector %r (known: %s)" % (where, key, ", ".join(SELECTORS)))
            continue
        if key == "label":
            count = len(problems)
            labels = fields.labels(values, "labels", problems, field)
            if len(problems) == count:
                if not labels:
                    problems.append("%s is empty" % field)
                match[key] = labels
            continue
        items = _as_list(values)
        if not items:
            problems.append("%s is empty" % field)
            continue
        good = []
        for item in items:
            if key == "mac":
                try:
                    good.append(fields.mac(item))
                except fields.FieldError as exc:
                    problems.append("%s: %s" % (field, exc))
            elif key == "name":
                if not isinstance(item, str) or not _GLOB_RE.match(item):
                    problems.append("%s: %r is not a name glob (letters, digits, - . _ * ? [ ] !)"
                                    % (field, item))
                else:
                    good.append(item)
            elif key == "group":
                if not fields.is_identifier(item):
                    problems.append("%s: %r is not a group name" % (field, item))
                else:
                    good.append(item)
            elif key == "subnet":
                try:
                    good.append(str(fields.network(item if isinstance(item, str) else str(item), field, (4, 6))))
                except fields.FieldError as exc:
                    problems.append(str(exc))
            elif key == "arch":
                if item not in ARCHES:
                    problems.append("%s: %r is not one of %s" % (field, item, ", ".join(ARCHES)))
                else:
                    good.append(item)
            elif key == "firmware":
                if item not in FIRMWARES:
                    problems.append("%s: %r is not one of %s" % (field, item, ", ".join(FIRMWARES)))
                else:
                    good.append(item)
        if good:
            match[key] = sorted(set(good))
    return match


def _parse_action(where, raw, channels, images, problems, allowed):
    for key in sorted(set(raw) - set(allowed)):
        problems.append("%s: unknown field %r (known: %s)" % (where, key, ", ".join(allowed)))
    channel, image = raw.get("channel"), raw.get("image")
    if (channel is None) == (image is None):
        problems.append("%s: give exactly one of channel or image (got %s)"
                        % (where, "both" if channel is not None else "neither"))
    if channel is not None and channel not in channels:
        problems.append("%s: channel %r is not defined (channels: %s)"
                        % (where, channel, ", ".join(sorted(channels)) or "none"))
    fallback = raw.get("fallback")
    for field, value, stored in (("image", image, "pinned image"), ("fallback", fallback, "fallback image")):
        if value is None:
            continue
        if not store.valid_version(value):
            problems.append("%s: %s %r is not a valid version name" % (where, field, value))
        elif images is not None and value not in images:
            problems.append("%s: %s %r is not in the image store" % (where, stored, value))
    kargs = raw.get("kernel_args")
    problems.extend(fields.kernel_arg_problems("%s: kernel_args" % where, kargs, "user"))
    profile = raw.get("profile")
    if profile is not None and (not fields.is_identifier(profile)):
        problems.append("%s: profile %r is not allowed (letters, digits, _ . -)" % (where, profile))
    return channel, image, fallback, fields.kernel_args(kargs), profile


def parse_channels(raw, images, problems):
    """Channels: name -> version, or name -> {arch: version}."""
    channels = {}
    if raw is None:
        return channels
    if not isinstance(raw, dict):
        problems.append("policy.channels: %r is not a mapping of channel -> version" % (raw,))
        return channels
    for name in sorted(raw, key=str):
        value = raw[name]
        where = "channel %s" % name
        if not fields.is_identifier(name):
            problems.append("policy.channels: channel name %r is not allowed (letters, digits, _ . -)"
                            % (name,))
            continue
        per_arch = value if isinstance(value, dict) else {None: value}
        entry = {}
        for arch, version in per_arch.items():
            field = "%s: version" % where if arch is None else "%s: %s" % (where, arch)
            if arch is not None and arch not in ARCHES:
                problems.append("%s: arch %r is not one of %s" % (where, arch, ", ".join(ARCHES)))
                continue
            if not store.valid_version(version):
                problems.append("%s %r is not a valid version name" % (field, version))
                continue
            if images is not None:
                image = images.get(version)
                if image is None:
                    problems.append("%s %r is not in the image store" % (field, version))
                    continue
                if arch is not None and image.arch != arch:
                    problems.append("%s %r is an image for %s, not %s"
                                    % (field, version, image.arch, arch))
                    continue
            entry[arch] = version
        # A channel with a bad version is still a known channel: rules naming
        # it are not reported a second time.
        channels[name] = entry
    return channels


def parse_policy(raw, images, problems):
    """Check a policy mapping; return (channels, rules, default)."""
    if not isinstance(raw, dict):
        problems.append("policy: %r is not a mapping with channels, rules and default" % (raw,))
        return {}, [], None
    for key in sorted(set(raw) - {"channels", "rules", "default"}):
        problems.append("policy: unknown field %r (known: channels, rules, default)" % key)
    channels = parse_channels(raw.get("channels"), images, problems)
    rules = []
    seen_labels = {}
    raw_rules = raw.get("rules")
    if raw_rules is not None and not isinstance(raw_rules, list):
        problems.append("policy.rules: %r is not a list" % (raw_rules,))
        raw_rules = []
    for index, item in enumerate(raw_rules or []):
        name = item.get("name") if isinstance(item, dict) else None
        where = "rule %s" % name if isinstance(name, str) and name else "rules[%d]" % index
        if not isinstance(item, dict):
            problems.append("%s: %r is not a mapping" % (where, item))
            continue
        count = len(problems)
        if name is not None and (not fields.is_identifier(name)):
            problems.append("%s: name %r is not allowed (letters, digits, _ . -)" % (where, name))
        elif name in seen_labels:
            problems.append("%s: name is used twice (rules[%d] and rules[%d])"
                            % (where, seen_labels[name], index))
        elif name is not None:
            seen_labels[name] = index
        match = _parse_match(where, item.get("match"), problems)
        percent = item.get("percent")
        if percent is not None:
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) \
                    or not 0 <= percent <= 100:
                problems.append("%s: percent %r is not a number from 0 to 100" % (where, percent))
                percent = None
        seed = item.get("seed", name if name else "rule-%d" % index)
        if not isinstance(seed, (str, int)) or isinstance(seed, bool):
            problems.append("%s: seed %r is not a string" % (where, seed))
            seed = ""
        channel, image, fallback, kargs, profile = _parse_action(where, item, channels, images,
                                                                 problems, RULE_KEYS)
        rule = Rule(index, where, match, percent, str(seed), channel, image, kargs, profile,
                    fallback)
        if len(problems) == count:
            for earlier in rules:
                if earlier.is_catch_all():
                    problems.append("%s: can never match, %s before it matches every node"
                                    % (where, earlier.label))
                    break
                if earlier.match == rule.match and (earlier.percent is None or earlier.percent >= 100):
                    problems.append("%s: can never match, %s before it has the same selectors"
                                    % (where, earlier.label))
                    break
            if image is not None and images is not None and image in images and "arch" in match \
                    and images[image].arch not in match["arch"]:
                problems.append("%s: pinned image %r is for %s, but the rule selects arch %s"
                                % (where, image, images[image].arch, ", ".join(match["arch"])))
            rules.append(rule)
    default = None
    raw_default = raw.get("default")
    if not isinstance(raw_default, dict):
        problems.append("policy.default: required, a mapping with channel or image (got %r)"
                        % (raw_default,))
    else:
        count = len(problems)
        channel, image, fallback, kargs, profile = _parse_action(
            "policy.default", raw_default, channels, images, problems, DEFAULT_KEYS)
        if len(problems) == count:
            default = Rule(len(raw_rules or []), "default", {}, None, "default", channel, image,
                           kargs, profile, fallback)
    return channels, rules, default
