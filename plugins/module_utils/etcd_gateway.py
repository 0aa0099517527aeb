# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control plane's etcd, through etcd's HTTP/JSON gateway (Debian 12's python3-etcd3gw).

One client for the boot service (roles/boot_service) and the modules that
read or change the ledger (boot_ledger): reads, prefix reads, and writes and
deletes that hold only if the key is still at the revision read (a
transaction), so two writers never lose each other's change. TLS with a
member's certificate of the site CA. Every endpoint of the cluster is tried
in turn; the one that answered is asked first next time.
"""

from __future__ import annotations

import base64
import json

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

    def __init__(self, endpoints, ca, cert, key, timeout, protocol="https"):
        if not HAS_ETCD3GW:
            raise Unavailable("the Python library etcd3gw is required (Debian: python3-etcd3gw): %s"
                              % ETCD3GW_IMPORT_ERROR)
        self.errors = (etcd3gw_exceptions.Etcd3Exception, ValueError, KeyError)
        self.clients = [etcd3gw.Etcd3Client(host=host, port=port, protocol=protocol, ca_cert=ca, cert_cert=cert,
                                            cert_key=key, api_path="/v3/") for host, port in endpoints]
        self.timeout = timeout
        self.preferred = 0

    @classmethod
    def from_config(cls, raw):
        """A store from the ``etcd`` mapping of the boot service's configuration."""
        raw = raw or {}
        return cls(endpoints_of(raw.get("endpoints")), raw.get("ca"), raw.get("cert"), raw.get("key"),
                   float(raw.get("timeout", 2)), raw.get("protocol", "https"))

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
        raise Unavailable(str(last)[:300])

    def read(self, key, serializable=False):
        """(the key's JSON value or None, its mod revision or 0)."""
        result = self._post("/kv/range", {"key": b64(key), "serializable": serializable})
        kvs = result.get("kvs") or []
        if not kvs:
            return None, 0
        return json.loads(unb64(kvs[0].get("value"))), int(kvs[0].get("mod_revision", 0))

    def read_prefix(self, prefix, serializable=False):
        """{key: (JSON value, mod revision)} of every key under ``prefix``."""
        result = self._post("/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                          "serializable": serializable})
        found = {}
        for item in result.get("kvs") or []:
            found[unb64(item["key"]).decode()] = (json.loads(unb64(item.get("value"))),
                                                  int(item.get("mod_revision", 0)))
        return found

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
