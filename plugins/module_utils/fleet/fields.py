# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule for each kind of value in the fleet, written once.

Each rule takes the raw value and the field it came from, and returns the
value in its one normal form or raises FieldError with a message naming
the field and the value (``port 70000 is not a TCP port (1-65535)``). The
caller puts the node or server in front (``node n1: ...``).
"""

from __future__ import annotations

import re

from ansible_collections.orionos.diskless.plugins.module_utils import image_store

try:
    import netaddr

    HAS_NETADDR = True
    NETADDR_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without netaddr
    netaddr = None
    HAS_NETADDR = False
    NETADDR_IMPORT_ERROR = exc


class FieldError(ValueError):
    """A value that cannot be used; the message names the field and the value."""


# A bad value is quoted in a message up to this many characters, so that a
# hostile megabyte of input gives a message of one line.
QUOTE_LIMIT = 80


def quote(value, limit=QUOTE_LIMIT):
    """``repr(value)`` cut to ``limit`` characters, saying how long the value was."""
    try:
        text = repr(value)
    except Exception:  # pylint: disable=broad-except  # a hostile __repr__
        text = "<%s>" % type(value).__name__
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else len(text)
    return "%s... (%d %s)" % (text[:limit], size, "characters" if isinstance(value, str) else "long")


FIRMWARES = ("bios", "uefi")
ARCHES = ("x86_64", "aarch64", "armv7l", "i686", "riscv64", "ppc64le", "s390x")

# A node name is a DNS label: it ends up in file names, DHCP host names,
# iPXE scripts and the kernel command line.
_NODE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# Names dnsmasq reads as something else in a dhcp-host line: a lease time
# (digits with an optional s, m, h, d or w) or a keyword.
_LEASE_TIME_RE = re.compile(r"^[0-9]+[smhdw]?\Z")
DNSMASQ_KEYWORDS = ("infinite", "ignore")
# Short identifiers: groups, channels, rules, profiles, label keys.
_IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9_.-]{0,63}\Z")
# One kernel argument: no whitespace, quotes, iPXE '${', shell or iPXE
# metacharacters. Anything else is refused rather than escaped.
_KARG_RE = re.compile(r"^[A-Za-z0-9_.,:=/+@%-]+\Z")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*\Z")
_IFACE_RE = re.compile(r"^[A-Za-z0-9._-]{1,15}\Z")
_HEX12 = re.compile(r"^[0-9a-f]{12}\Z")


def require_netaddr():
    """Raise a helpful error when netaddr is missing on the controller."""
    if not HAS_NETADDR:
        raise FieldError(
            "the Python library 'netaddr' is required on the controller "
            "(pip install netaddr): %s" % NETADDR_IMPORT_ERROR
        )


# ------------------------------------------------------------------ MACs

def mac(value):
    """A MAC address in lower-case colon form.

    Accepts colon, hyphen, Cisco dotted and bare hex notation, in either
    case, and the pxelinux ``01-`` form. Multicast and all-zero addresses
    are refused.
    """
    if not isinstance(value, str):
        raise FieldError("MAC address %r is not a string" % (value,))
    raw = value.strip().lower()
    if re.match(r"^01-([0-9a-f]{2}-){5}[0-9a-f]{2}\Z", raw):
        raw = raw[3:]
    if re.match(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}\Z", raw):
        if ":" in raw and "-" in raw:
            raise FieldError("MAC address %r mixes ':' and '-'" % (value,))
        digits = raw.replace(":", "").replace("-", "")
    elif re.match(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\Z", raw):
        digits = raw.replace(".", "")
    elif _HEX12.match(raw):
        digits = raw
    else:
        raise FieldError("malformed MAC address %r" % (value,))
    if int(digits[:2], 16) & 1:
        raise FieldError("MAC address %r is a multicast address" % (value,))
    if digits == "000000000000":
        raise FieldError("MAC address %r is all zeros" % (value,))
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


# ----------------------------------------------------------------- names

def node_name(value, field="name"):
    """A node name: a DNS label of lower-case letters, digits and '-'.

    It becomes a file name (``<name>.ipxe``, ``<name>.conf``), a DHCP host
    name and a kernel argument, so it may not look like a MAC address (the
    ``<mac>.ipxe`` links sit beside the scripts) or like a lease time or a
    keyword of dnsmasq's dhcp-host lines.
    """
    if not isinstance(value, str) or not _NODE_NAME_RE.match(value):
        raise FieldError("%s %s is not a valid host name (lower-case letters, digits, '-'; up to 63)"
                         % (field, quote(value)))
    try:
        mac(value)
    except FieldError:
        pass
    else:
        raise FieldError("%s %s looks like a MAC address (the MAC links of the node scripts have such names)"
                         % (field, quote(value)))
    if _LEASE_TIME_RE.match(value) or value in DNSMASQ_KEYWORDS:
        raise FieldError("%s %s is read by dnsmasq as a lease time or keyword, not a host name"
                         % (field, quote(value)))
    return value


def is_identifier(value):
    """True for a group, channel, rule, profile or label key name."""
    return isinstance(value, str) and bool(_IDENT_RE.match(value))


def identifier(value, field):
    """A group, channel, rule, profile or label key: letters, digits, _ . - (up to 64)."""
    if not is_identifier(value):
        raise FieldError("%s %r is not allowed (letters, digits, _ . -)" % (field, value))
    return value


def version(value, field="image"):
    """An image version (the image store's rule for version directory names)."""
    if not image_store.valid_version(value):
        raise FieldError("%s %r is not a valid image version" % (field, value))
    return value


def choice(value, field, choices):
    """One of ``choices``."""
    if value not in choices:
        raise FieldError("%s %r is not one of %s" % (field, value, ", ".join(choices)))
    return value


def labels(value, field, problems, where):
    """Labels as a mapping or a list of ``key=value`` strings -> dict.

    Every bad entry is appended to ``problems`` as ``<where>: ...``; the good
    ones are returned.
    """
    result = {}
    if value is None:
        return result
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                problems.append("%s: %s entry %r is not key=value" % (where, field, item))
                continue
            key, _sep, val = item.partition("=")
            pairs.append((key, val))
    else:
        problems.append("%s: %s %r is not a mapping or a list of key=value" % (where, field, value))
        return result
    for key, val in pairs:
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            val = str(val)
        if not is_identifier(key):
            problems.append("%s: label key %r is not allowed (letters, digits, _ . -)" % (where, key))
        elif not isinstance(val, str) or not _LABEL_VALUE_RE.match(val):
            problems.append("%s: label %s value %r is not allowed (letters, digits, _ . -)" % (where, key, val))
        else:
            result[key] = val
    return result


# ---------------------------------------------------------- kernel args

# The arguments a node's boot script writes itself: nobody else may give them.
SCRIPT_ARGS = ("initrd", "orion.node", "orion.image", "orion.servers", "orion.profile", "orion.fallback",
               "orion.attempt")
# The init's settings a site, a rule or a node may give (docs/node-boot.md).
INIT_TUNABLES = ("orion.verify", "orion.root", "orion.timeo", "orion.retrans", "orion.cache", "orion.readahead",
                 "orion.onfail", "orion.pathcheck")
# x86's COMMAND_LINE_SIZE, the terminating NUL included.
COMMAND_LINE_MAX = 2047


def kernel_arg_key(arg):
    """The name of a kernel argument (``orion.node`` of ``orion.node=n1``)."""
    return arg.split("=", 1)[0]


def kernel_arg_problems(where, args, reserved="script"):
    """The problems of a kernel argument string or list (empty: usable).

    ``reserved`` says which arguments may not be given here: ``script``
    those the boot script writes itself (``initrd``, ``orion.node``, ...);
    ``user`` (a site's, a rule's or a node's own arguments) also every other
    ``orion.*`` but the init's tunables.
    """
    if args is None:
        return []
    if isinstance(args, str):
        if "\n" in args or "\r" in args:
            return ["%s: contains a line break" % where]
        items = args.split()
    elif isinstance(args, (list, tuple)):
        items = list(args)
    else:
        return ["%s: %s is not a string or list" % (where, quote(args))]
    problems = []
    for item in items:
        if not isinstance(item, str) or not _KARG_RE.match(item):
            problems.append("%s: %s has characters that are not allowed in a kernel argument "
                            "(allowed: letters, digits and _ . , : = / + @ %% -)" % (where, quote(item)))
            continue
        key = kernel_arg_key(item)
        if key in SCRIPT_ARGS:
            problems.append("%s: %s is reserved: the boot script sets %s itself" % (where, quote(item), key))
        elif reserved == "user" and key.startswith("orion.") and key not in INIT_TUNABLES:
            problems.append("%s: %s is reserved: orion.* arguments are the boot servers' (a site, rule or node "
                            "may give only the init's settings %s)" % (where, quote(item), ", ".join(INIT_TUNABLES)))
    return problems


def kernel_args(value):
    """Kernel arguments (a string or a list) as a list of words."""
    if not value:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value)


# ------------------------------------------------------------- numbers

def integer(value, field, low, high, what=None):
    """An integer from ``low`` to ``high`` (strings of digits too, as inventories give them)."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.match(r"^[0-9]+\Z", value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise FieldError("%s %s is not %s" % (field, _show(value), what or "in %d-%d" % (low, high)))
    return number


def port(value, field, protocol="TCP"):
    """A port of ``protocol`` (TCP, UDP or both): 1-65535."""
    return integer(value, field, 1, 65535, "a %s port (1-65535)" % protocol)


def _show(value):
    # Numbers and their text as the inventory wrote them (-e gives text); anything else quoted.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value and value.strip() == value and " " not in value:
        return value
    return repr(value)


# ------------------------------------------------------------ addresses

def address(value, field, versions=(4, 6)):
    """An IP address (``netaddr.IPAddress``) of one of ``versions``."""
    require_netaddr()
    try:
        addr = netaddr.IPAddress(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) \
            and str(value).strip() == str(value) and str(value) else None
    except (netaddr.AddrFormatError, ValueError, TypeError):
        addr = None
    if addr is None or addr.version not in versions:
        kind = {(4,): "an IPv4 address", (6,): "an IPv6 address"}.get(tuple(versions), "an IPv4 or IPv6 address")
        raise FieldError("%s %r is not %s" % (field, value, kind))
    return addr


def network(value, field, versions=(4,)):
    """A CIDR network (``netaddr.IPNetwork``) without host bits."""
    require_netaddr()
    try:
        net = netaddr.IPNetwork(value) if isinstance(value, str) and value.strip() == value and value else None
    except (netaddr.AddrFormatError, ValueError, TypeError):
        net = None
    if net is None:
        raise FieldError("%s %r is not a CIDR network" % (field, value))
    if net.version not in versions:
        raise FieldError("%s %r is not %s" % (field, value, "IPv4" if versions == (4,) else "IPv6"))
    if str(net.cidr) != str(net):
        raise FieldError("%s %r has host bits set (did you mean %s?)" % (field, value, net.cidr))
    return net


def within(addr, net):
    """True when ``addr`` lies in ``net`` (any address of it, of the same IP version)."""
    return addr.version == net.version and addr in net


def host_on(addr, net):
    """True when ``addr`` is a host address of ``net`` (not its network or broadcast address)."""
    if not within(addr, net):
        return False
    if net.version == 4 and net.prefixlen < 31:
        return addr not in (net.network, net.broadcast)
    return True


def on_subnet(addr, net, field, what="the node subnet"):
    """``addr`` when it is a host address of ``net``; else FieldError."""
    if not host_on(addr, net):
        raise FieldError("%s %s is outside %s %s" % (field, addr, what, net))
    return addr


# ---------------------------------------------------------------- paths

def abs_path(value, field):
    """An absolute path of letters, digits and . _ / - (it goes into configuration files)."""
    if not isinstance(value, str) or not _PATH_RE.match(value) or "/../" in value + "/":
        raise FieldError("%s %r is not an absolute path of letters, digits and . _ / -" % (field, value))
    return value


def interface_name(value, field):
    """A network interface name: 1-15 of A-Z a-z 0-9 . _ -."""
    if not isinstance(value, str) or not _IFACE_RE.match(value):
        raise FieldError("%s %r is not an interface name (1-15 of A-Z a-z 0-9 . _ -)" % (field, value))
    return value


# ---------------------------------------------------------- other names

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]*\Z")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9@._-]+\Z")
_CHECK_NAME_RE = re.compile(r"^[a-z0-9_]+\Z")
_CHECK_TARGET_RE = re.compile(r"^[A-Za-z0-9:/._@%+=-]+\Z")
_SIZE_RE = re.compile(r"^[0-9]+[kMG]?\Z")
_CALENDAR_RE = re.compile(r"^[A-Za-z0-9 :*/,.~-]+\Z")


def _matches(pattern, value):
    return isinstance(value, str) and bool(pattern.match(value))


def is_host(value):
    """An IPv4 or IPv6 address or a host name (what ssh and rsync are pointed at)."""
    return _matches(_HOST_RE, value)


def is_user_name(value):
    """A Unix account name."""
    return _matches(_USER_RE, value)


def is_service_name(value):
    """A systemd unit name."""
    return _matches(_SERVICE_RE, value)


def is_check_name(value):
    """A health check's name: a-z 0-9 _."""
    return _matches(_CHECK_NAME_RE, value)


def is_check_target(value):
    """A health check's target (an address, URL or path; no shell metacharacters)."""
    return _matches(_CHECK_TARGET_RE, value)


def size(value, field):
    """A file size like 100k, 50M or 1G."""
    if not _matches(_SIZE_RE, value if not isinstance(value, int) or isinstance(value, bool) else str(value)):
        raise FieldError("%s %s is not a size like 100k, 50M or 1G" % (field, value))
    return str(value)


def calendar(value, field):
    """A systemd calendar expression (hourly, daily, *-*-* 03:00:00, ...)."""
    if not _matches(_CALENDAR_RE, value):
        raise FieldError("%s %s is not a systemd calendar expression" % (field, value))
    return value


def truth(value):
    """An inventory's boolean: true, yes, on, 1 (any case) are true."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1", "y")
    return bool(value)


def number(value):
    """An int or float (or its text), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None
