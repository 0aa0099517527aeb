# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control plane's etcd, through etcd's HTTP/JSON gateway (Debian 12's python3-etcd3gw).

One client for the boot service (roles/boot_service) and the modules that
read or change the ledger (boot_ledger): reads, prefix reads, and writes and
deletes that hold only if the key is still at the revision read (a
transaction), so two writers never lose each other's change. TLS with a
member's certificate of the site CA. Every endpoint of the cluster is tried
in turn (the server's own member first); the one that answered is asked
first next time.

A ``Mirror`` keeps a copy of every key under a prefix, filled by one range
read and kept current by an etcd watch on the server's own member, so that
the boot service answers most requests without a round trip to etcd.
"""

from __future__ import annotations

import base64
import json
import threading
import time

try:
    import etcd3gw
    from etcd3gw import exceptions as etcd3gw_exceptions

    HAS_ETCD3GW = True
    ETCD3GW_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without etcd3gw
    HAS_ETCD3GW = False
    ETCD3GW_IMPORT_ERROR = exc


class Unavailable(Exception):
    """etcd could not be reached or gave no answer (the outcome of a write is then unknown)."""


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64(text):
    return base64.b64decode(text or "")


def describe(exc):
    """An error in a few words: its text (cut), else its kind (etcd3gw's connection errors carry no text)."""
    return str(exc)[:300] or type(exc).__name__


def prefix_end(prefix):
    """The end of etcd's key range of every key that starts with ``prefix``."""
    raw = prefix.encode()
    return raw[:-1] + bytes([raw[-1] + 1])


def endpoints_of(raw):
    """[(host, port)] from the ``etcd.endpoints`` of the boot service's configuration; ValueError names the bad one."""
    found = []
    for item in raw or []:
        if not isinstance(item, dict) or not isinstance(item.get("host"), str) or not item["host"]:
            raise ValueError("etcd endpoint %r is not a mapping with a host" % (item,))
        port = item.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("etcd endpoint %s: port %r is not a TCP port" % (item["host"], port))
        found.append((item["host"], port))
    if not found:
        raise ValueError("no etcd endpoint is configured")
    return found


class Store:
    """Keys holding JSON documents in etcd, read and written through the gateway."""

    def __init__(self, endpoints, ca, cert, key, timeout, protocol="https", local=0):
        if not HAS_ETCD3GW:
            raise Unavailable("the Python library etcd3gw is required (Debian: python3-etcd3gw): %s"
                              % ETCD3GW_IMPORT_ERROR)
        self.errors = (etcd3gw_exceptions.Etcd3Exception, ValueError, KeyError)
        self.clients = [etcd3gw.Etcd3Client(host=host, port=port, protocol=protocol, ca_cert=ca, cert_cert=cert,
                                            cert_key=key, api_path="/v3/") for host, port in endpoints]
        for client in self.clients:
            # The members are reached directly: no proxy or .netrc from the environment, which requests would
            # otherwise look up again on every request.
            client.session.trust_env = False
        self.timeout = timeout
        # The server's own member: asked first, and the one a Mirror watches.
        self.local = local if 0 <= local < len(self.clients) else 0
        self.preferred = self.local

    @classmethod
    def from_config(cls, raw):
        """A store from the ``etcd`` mapping of the boot service's configuration."""
        raw = raw or {}
        endpoints = endpoints_of(raw.get("endpoints"))
        local = raw.get("local")
        if local is not None and (isinstance(local, bool) or not isinstance(local, int)
                                  or not 0 <= local < len(endpoints)):
            raise ValueError("etcd local %r is not the index of one of the %d endpoints" % (local, len(endpoints)))
        return cls(endpoints, raw.get("ca"), raw.get("cert"), raw.get("key"), float(raw.get("timeout", 2)),
                   raw.get("protocol", "https"), local or 0)

    def _post(self, path, payload):
        last = None
        for step in range(len(self.clients)):
            index = (self.preferred + step) % len(self.clients)
            client = self.clients[index]
            try:
                result = client.post(client.get_url(path), json=payload, timeout=self.timeout)
            except self.errors as exc:
                last = exc
                continue
            self.preferred = index
            return result
        raise Unavailable(describe(last))

    def read(self, key, serializable=False):
        """(the key's JSON value or None, its mod revision or 0)."""
        result = self._post("/kv/range", {"key": b64(key), "serializable": serializable})
        kvs = result.get("kvs") or []
        if not kvs:
            return None, 0
        return json.loads(unb64(kvs[0].get("value"))), int(kvs[0].get("mod_revision", 0))

    def read_prefix(self, prefix, serializable=False):
        """{key: (JSON value, mod revision)} of every key under ``prefix``."""
        return self.read_prefix_at(prefix, serializable)[0]

    def read_prefix_at(self, prefix, serializable=False, local=False):
        """(every key under ``prefix`` as read_prefix gives them, the store's revision they were read at).

        ``local``: ask the server's own member only.
        """
        payload = {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), "serializable": serializable}
        result = self._post_local("/kv/range", payload) if local else self._post("/kv/range", payload)
        found = {}
        for item in result.get("kvs") or []:
            found[unb64(item["key"]).decode()] = (json.loads(unb64(item.get("value"))),
                                                  int(item.get("mod_revision", 0)))
        return found, int((result.get("header") or {}).get("revision", 0))

    def _post_local(self, path, payload):
        client = self.clients[self.local]
        try:
            return client.post(client.get_url(path), json=payload, timeout=self.timeout)
        except self.errors as exc:
            raise Unavailable(describe(exc)) from exc

    def watch(self, prefix, start_revision):
        """The watch responses (JSON mappings) of every change under ``prefix`` from ``start_revision`` on.

        Streamed from the server's own member, which holds the connection open: the responses come as changes
        are made. Unavailable when the stream cannot be opened or breaks.
        """
        client = self.clients[self.local]
        request = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                      "start_revision": str(start_revision)}}
        try:
            response = client.session.post(client.get_url("/watch"), json=request, stream=True,
                                           timeout=(self.timeout, None))
            response.raise_for_status()
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)
        except Exception as exc:  # pylint: disable=broad-except  # requests' and the stream's errors alike
            raise Unavailable("watch: %s" % describe(exc)) from exc
        raise Unavailable("watch: the member closed the stream")

    @staticmethod
    def _unchanged(key, revision):
        if revision:
            return {"key": b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": str(revision)}
        return {"key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}

    def write(self, key, text, revision):
        """Put ``text`` if the key is still at ``revision`` (0: absent); False when somebody wrote it meanwhile."""
        result = self._post("/kv/txn", {"compare": [self._unchanged(key, revision)],
                                        "success": [{"request_put": {"key": b64(key), "value": b64(text)}}]})
        return bool(result.get("succeeded"))

    def delete(self, key, revision):
        """Delete the key if it is still at ``revision``; False when somebody wrote it meanwhile."""
        result = self._post("/kv/txn", {"compare": [self._unchanged(key, revision)],
                                        "success": [{"request_delete_range": {"key": b64(key)}}]})
        return bool(result.get("succeeded"))


class Mirror:
    """A copy of every key under a prefix, kept current by an etcd watch (see ``Store.watch``).

    ``run`` fills it with one range read, then applies the watch's events; any
    error empties it and starts again. ``probe`` asks the watched member for a
    linearizable read: only a member in a cluster with quorum answers it, and
    one that answers has applied what the cluster committed, so its watch is
    current. ``get`` answers only while the watch streams and the last probe
    is younger than ``fresh_for`` seconds; otherwise it raises ``Stale`` and
    the caller reads etcd itself. A copy thus never answers in place of a
    member that lost quorum or a watch that stopped.
    """

    def __init__(self, store, prefix, fresh_for=6.0, clock=time.monotonic):
        self.store = store
        self.prefix = prefix
        self.fresh_for = fresh_for
        self.clock = clock
        self.lock = threading.Lock()
        self.keys = {}
        self.revision = 0
        self.live = False
        self.probed = None
        self.why = "not started"
        self.events = 0
        self.resyncs = 0

    # ---------------------------------------------------------------- state

    def load(self, found, revision):
        """Start from a range read: {key: (value, mod revision)} at ``revision``."""
        with self.lock:
            self.keys = dict(found)
            self.revision = revision
            self.live = True
            self.why = ""
            self.resyncs += 1

    def apply(self, response):
        """Apply one watch response; False when the watch ended (canceled, compacted), which needs a new load."""
        result = response.get("result") if isinstance(response, dict) else None
        if not isinstance(result, dict):
            self.lost("a watch response without a result: %s" % str(response)[:200])
            return False
        if result.get("canceled") or result.get("compact_revision"):
            self.lost("the watch ended (%s)" % (result.get("cancel_reason") or "compacted at revision %s"
                                                % result.get("compact_revision")))
            return False
        with self.lock:
            for event in result.get("events") or []:
                kv = event.get("kv") or {}
                key = unb64(kv.get("key")).decode()
                if event.get("type") == "DELETE":
                    self.keys.pop(key, None)
                else:
                    self.keys[key] = (json.loads(unb64(kv.get("value"))), int(kv.get("mod_revision", 0)))
                self.events += 1
            revision = int((result.get("header") or {}).get("revision", 0))
            self.revision = max(self.revision, revision)
        return True

    def lost(self, why):
        with self.lock:
            self.live = False
            self.keys = {}
            self.why = why

    def probe(self):
        """Ask the watched member for a linearizable read; True when it answered (its cluster has quorum)."""
        try:
            self.store.read_prefix_at(self.prefix + "\x00", local=True)
        except Unavailable as exc:
            self.probed = None
            self.why = "the member did not answer a linearizable read: %s" % exc
            return False
        self.probed = self.clock()
        return True

    def usable(self):
        return self.live and self.probed is not None and self.clock() - self.probed <= self.fresh_for

    def get(self, key):
        """(the key's value or None, its mod revision or 0) from the copy; Stale when the copy may be behind."""
        with self.lock:
            if not self.usable():
                raise Stale(self.why or "the last probe is older than %s s" % self.fresh_for)
            return self.keys.get(key, (None, 0))

    def status(self):
        return {"usable": self.usable(), "live": self.live, "revision": self.revision, "keys": len(self.keys),
                "events": self.events, "resyncs": self.resyncs, "why": self.why}

    # ---------------------------------------------------------------- loop

    def run(self, stop, pause=1.0):
        """Load and watch until ``stop`` (a threading.Event) is set; after an error, wait ``pause`` s and start over."""
        while not stop.is_set():
            try:
                found, revision = self.store.read_prefix_at(self.prefix, local=True)
                self.load(found, revision)
                for response in self.store.watch(self.prefix, revision + 1):
                    if stop.is_set():
                        self.lost("stopped")
                        break
                    if not self.apply(response):
                        break
            except Unavailable as exc:
                self.lost(str(exc))
            except (ValueError, KeyError, TypeError) as exc:
                self.lost("a watch response could not be read: %s" % str(exc)[:200])
            stop.wait(pause)


class Stale(Exception):
    """The mirror cannot answer: its watch is not streaming, or its member did not confirm quorum lately."""
