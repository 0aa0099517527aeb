# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""orion-boot-service: the boot service of an OrionOS boot server.

It runs behind nginx (roles/boot_server proxies /boot/nodes/*.ipxe to it) and
keeps the boot ledger in the control plane's etcd cluster:

- GET /boot/nodes/<node or MAC>.ipxe: the node's script, decided from the
  policy's resolution (the boot_policy module's resolution.json) and the
  node's ledger. A request from the node's reserved address is a boot attempt:
  its id goes on the kernel command line (orion.attempt=) and into etcd.
  When etcd cannot be read the answer is 503, and nginx serves the static
  script this service keeps in static_dir (the last good version, never one
  marked bad for the node).
- The nodes' boot reports, stored by nginx under reports_dir (only the node's
  reserved address may PUT them), are read every few seconds; each ends its
  attempt in the ledger.
- Deadlines are swept, and the static scripts rewritten from the ledger.
- The ledgers are mirrored by an etcd watch on the server's own member, and
  the member is asked every few seconds for a linearizable read. While both
  hold, a request that is not an attempt is answered from the mirror, and an
  attempt needs one etcd transaction (its compare catches a mirror behind);
  otherwise every request reads etcd.
- GET /metrics (Prometheus) and GET /status (JSON: every node's ledger).

Every decision is made by plugins/module_utils/boot_service.py of the
collection (the same engine the modules use); this file only does the I/O.
Python and libraries: Debian 12's python3-aiohttp, python3-etcd3gw,
python3-prometheus-client and python3-netaddr.
"""

import argparse
import asyncio
import concurrent.futures
import json
import logging
import os
import sys
import threading
import time
import types

from aiohttp import web

LOG = logging.getLogger("orion-boot-service")


def mtime_of(path):
    """The modification time of ``path`` in ns, or None when it cannot be read."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class LedgerCollector:
    """Gauges over the ledgers this server last read: attempts by state, failed ones by cause, bad marks."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        # pylint: disable=import-outside-toplevel
        from prometheus_client.core import GaugeMetricFamily
        attempts = GaugeMetricFamily("orion_ledger_attempts", "Boot attempts the ledger keeps per node, by state",
                                     labels=["node", "state"])
        failed = GaugeMetricFamily("orion_ledger_failed_attempts", "Failed attempts the ledger keeps per node, by "
                                   "cause (report, fallback, superseded, deadline)", labels=["node", "cause"])
        marks = GaugeMetricFamily("orion_ledger_bad_marks", "Versions marked bad per node", labels=["node"])
        for name, ledger in sorted(self.service.ledgers.items()):
            for state in self.service.lg.STATES:
                attempts.add_metric([name, state], sum(1 for a in ledger.attempts if a.state == state))
            for cause in self.service.lg.CAUSES:
                failed.add_metric([name, cause], sum(1 for a in ledger.attempts if a.state == "failed"
                                                     and a.reason.split(":", 1)[0] == cause))
            marks.add_metric([name], len(ledger.marks))
        return [attempts, failed, marks]


class Service:
    """The service's state: its configuration, caches of the table and images, the metrics."""

    def __init__(self, config_path, engine):
        with open(config_path, encoding="utf-8") as handle:
            raw = json.load(handle)
        # The node scripts' options, as the boot_server role gave them to the boot_policy module.
        with open(raw.get("scripts_file") or "/etc/orion/boot-scripts.json", encoding="utf-8") as handle:
            scripts = json.load(handle)
        raw = dict(raw, servers=scripts.get("servers"), script=scripts.get("script"))
        self.svc, self.lg, self.boot_policy, self.fileio = engine.svc, engine.lg, engine.boot_policy, engine.fileio
        self.config = engine.svc.Config(raw)
        self.store = engine.etcd.Store.from_config(raw.get("etcd"))
        self.unavailable = engine.etcd.Unavailable
        prom = engine.prom
        self.listen = (raw.get("listen_host", "127.0.0.1"), int(raw.get("listen_port", 8740)))
        self.report_interval = float(raw.get("report_interval", 2))
        self.sweep_interval = float(raw.get("sweep_interval", 15))
        self.probe_interval = float(raw.get("probe_interval", 2))
        self.workers = int(raw.get("workers", 32))
        self.mirror = engine.etcd.Mirror(self.store, engine.svc.LEDGER_PREFIX, fresh_for=3 * self.probe_interval)
        self.stale = engine.etcd.Stale
        self._table = (None, {})
        self._images = (None, {})
        self.seen_reports = {}
        self.ledgers = {}
        self.writable = None
        self.last_error = ""
        registry = prom.CollectorRegistry()
        self.registry = registry
        self.prom = prom
        self.m_scripts = prom.Counter("orion_boot_service_scripts", "Scripts served, by whether they were a counted "
                                      "boot attempt", ["counted"], registry=registry)
        self.m_rollbacks = prom.Counter("orion_boot_service_rollbacks", "Scripts that named a node's last good "
                                        "version or fallback because its target is marked bad", registry=registry)
        self.m_reports = prom.Counter("orion_boot_service_reports", "Boot reports read, by outcome",
                                      ["outcome"], registry=registry)
        self.m_etcd_errors = prom.Counter("orion_boot_service_etcd_errors", "etcd requests that failed",
                                          ["operation"], registry=registry)
        self.m_conflicts = prom.Counter("orion_boot_service_write_conflicts", "Ledger writes retried because "
                                        "another server wrote the node's ledger first", registry=registry)
        self.m_static = prom.Counter("orion_boot_service_static_writes", "Static scripts rewritten from the "
                                     "ledger", registry=registry)
        self.m_writable = prom.Gauge("orion_boot_service_ledger_writable", "1 when the last ledger request "
                                     "reached a writable etcd", registry=registry)
        self.m_reads = prom.Counter("orion_boot_service_ledger_reads", "Ledger reads for requests and reports, by "
                                    "source (mirror: the watched copy; etcd: a request to etcd)", ["source"],
                                    registry=registry)
        self.m_mirror = prom.Gauge("orion_boot_service_mirror_usable", "1 when the watched copy of the ledgers "
                                   "answers (its watch streams and its member confirmed quorum lately)",
                                   registry=registry)
        registry.register(LedgerCollector(self))
        self.m_latency = prom.Histogram("orion_boot_service_script_seconds", "Time to answer a script request",
                                        registry=registry, buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 2.5))

    # ------------------------------------------------------------ inputs

    def table(self):
        """The nodes of the policy's resolution table (re-read when the file changes)."""
        stamp = mtime_of(self.config.table)
        if stamp is None:
            return {}
        if stamp != self._table[0]:
            self._table = (stamp, self.boot_policy.load_table(self.config.table))
        return self._table[1]

    def images(self):
        """The published versions (re-read when the store's state file or its images directory changes)."""
        watched = (("state", "images.json"), ("images",))
        stamp = tuple(mtime_of(os.path.join(self.config.root, *parts)) for parts in watched)
        if stamp != self._images[0]:
            self._images = (stamp, self.boot_policy.load_images(self.config.root)[0])
        return self._images[1]

    def ledger_of(self, name, doc):
        try:
            return self.lg.from_doc(name, doc)
        except self.lg.LedgerError as exc:
            # A damaged record is kept for the operator; the node boots as if it had none, untrialled.
            LOG.error("%s", exc)
            return None

    # ------------------------------------------------------------ scripts

    def transact(self, name, entry, change):
        """Read the node's ledger, ``change`` it, and write what it gives if nobody wrote the ledger meanwhile.

        ``change(ledger)`` returns (the ledger to write or None, an answer). A write that another server beat is
        done again from a new read. Returns (outcome, answer): ``done``; ``damaged`` (the stored ledger cannot be
        read); ``unavailable`` (etcd could not be asked, or did not confirm the write); ``busy`` (beaten 4 times).
        """
        key = self.svc.ledger_key(name)
        for turn in range(4):
            doc, revision = None, None
            if turn == 0:
                # First from the mirror; a write it was behind for fails its compare, and the next turn reads etcd.
                try:
                    doc, revision = self.mirror.get(key)
                    self.m_reads.labels("mirror").inc()
                except self.stale:
                    pass
            if revision is None:
                try:
                    doc, revision = self.store.read(key)
                except self.unavailable as exc:
                    self.note_error("read", exc)
                    return "unavailable", None
                self.m_reads.labels("etcd").inc()
            ledger = self.ledger_of(name, doc)
            if ledger is None:
                return "damaged", None
            new, answer = change(ledger)
            if new is not None:
                try:
                    if not self.store.write(key, self.svc.dumps(new), revision):
                        self.m_conflicts.inc()
                        continue
                except self.unavailable as exc:
                    # The write may still be applied later: go on as if nothing was written.
                    self.note_error("write", exc)
                    return "unavailable", None
                self.ledgers[name] = new
                self.write_static(name, entry, new)
            self.set_writable(True)
            return "done", answer
        return "busy", None

    def quick_script(self, name, entry, address):
        """The answer to a request that is not an attempt, from the mirror; None when etcd must be asked."""
        if entry.get("ip") and address == entry["ip"]:
            return None
        try:
            doc, unused = self.mirror.get(self.svc.ledger_key(name))
        except self.stale:
            return None
        ledger = self.ledger_of(name, doc)
        if ledger is None:
            return None
        self.m_reads.labels("mirror").inc()
        served = self.svc.serve(entry, ledger, self.config, self.images(), time.time(), address)
        return self.answered(name, address, served, LOG.debug)

    def answer_script(self, name, entry, address):
        """(status, script text) for a script request."""
        def change(ledger):
            served = self.svc.serve(entry, ledger, self.config, self.images(), time.time(), address)
            return served.ledger, served

        outcome, served = self.transact(name, entry, change)
        if outcome == "unavailable":
            return self.read_only_script(name, entry, address)
        if outcome == "damaged":
            return 503, "the ledger of %s cannot be read\n" % name
        if outcome == "busy":
            return 503, "the ledger of %s changed too often\n" % name
        return self.answered(name, address, served, LOG.info if served.attempt else LOG.debug)

    def read_only_script(self, name, entry, address):
        """With no writable etcd: the member's own copy of the ledger, trials paused; none at all: 503."""
        try:
            doc, unused = self.store.read(self.svc.ledger_key(name), serializable=True)
        except self.unavailable as exc:
            self.note_error("read", exc)
            return 503, "etcd cannot be reached\n"
        ledger = self.ledger_of(name, doc)
        if ledger is None:
            return 503, "the ledger of %s cannot be read\n" % name
        served = self.svc.serve(entry, ledger, self.config, self.images(), time.time(), address, writable=False)
        return self.answered(name, address, served, LOG.warning)

    def answered(self, name, address, served, log):
        """Count and log a script served; (200, its text)."""
        self.m_scripts.labels("yes" if served.attempt else "no").inc()
        if served.decision.rollback:
            self.m_rollbacks.inc()
        log("script of %s for %s: %s (%s; %s)", name, address, served.decision.version, served.decision.reason,
            served.counted)
        return 200, served.script

    def note_error(self, operation, exc):
        self.m_etcd_errors.labels(operation).inc()
        self.set_writable(False)
        self.last_error = "%s: %s" % (operation, exc)
        LOG.warning("etcd %s failed: %s", operation, exc)

    def set_writable(self, value):
        self.writable = value
        self.m_writable.set(1 if value else 0)
        if value:
            self.last_error = ""

    # ------------------------------------------------------------ static scripts

    def write_static(self, name, entry, ledger):
        text = self.svc.static_script(entry, ledger, self.config, self.images())
        path = os.path.join(self.config.static_dir, name + ".ipxe")
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == text:
                    return
        except OSError:
            pass
        self.fileio.atomic_write(path, text, mode=0o644)
        self.m_static.inc()
        for mac in entry.get("macs") or []:
            link = os.path.join(self.config.static_dir, mac.replace(":", "-") + ".ipxe")
            if os.path.islink(link) and os.readlink(link) == name + ".ipxe":
                continue
            tmp = link + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(name + ".ipxe", tmp)
            os.replace(tmp, link)

    def refresh(self):
        """Read every ledger (the member's own copy will do), sweep deadlines, rewrite the static scripts."""
        table = self.table()
        try:
            found = self.store.read_prefix(self.svc.LEDGER_PREFIX, serializable=True)
        except self.unavailable as exc:
            self.note_error("read", exc)
            return
        now = time.time()
        ledgers = {}
        for name, entry in sorted(table.items()):
            doc, revision = found.get(self.svc.ledger_key(name), (None, 0))
            ledger = self.ledger_of(name, doc)
            if ledger is None:
                continue
            swept = self.svc.sweep(ledger, self.config, now) if ledger.pending() else None
            if swept is not None:
                try:
                    if self.store.write(self.svc.ledger_key(name), self.svc.dumps(swept), revision):
                        ledger = swept
                        LOG.info("%s: %s", name, swept.attempts[-1].reason)
                except self.unavailable as exc:
                    self.note_error("write", exc)
            ledgers[name] = ledger
            self.write_static(name, entry, ledger)
        self.ledgers = ledgers
        wanted = {n + ".ipxe" for n in table} | {m.replace(":", "-") + ".ipxe" for e in table.values()
                                                 for m in e.get("macs") or []}
        for filename in os.listdir(self.config.static_dir):
            if filename.endswith(".ipxe") and filename not in wanted:
                os.unlink(os.path.join(self.config.static_dir, filename))

    # ------------------------------------------------------------ reports

    def read_reports(self):
        table = self.table()
        try:
            names = sorted(os.listdir(self.config.reports_dir))
        except OSError:
            return
        for filename in names:
            if not filename.endswith(".json") or filename[:-5] not in table:
                continue
            name = filename[:-5]
            path = os.path.join(self.config.reports_dir, filename)
            stamp = None
            try:
                info = os.stat(path)
                stamp = (info.st_mtime_ns, info.st_size)
                if self.seen_reports.get(name) == stamp:
                    continue
                with open(path, "rb") as handle:
                    body = json.loads(handle.read(65536).decode("utf-8"))
            except (OSError, ValueError) as exc:
                self.m_reports.labels("refused").inc()
                LOG.warning("report of %s refused: %s", name, str(exc)[:200])
                self.seen_reports[name] = stamp
                continue
            if self.take_report(name, table[name], body):
                self.seen_reports[name] = stamp

    def take_report(self, name, entry, body):
        """Apply one report; False when etcd could not be asked (it is read again next round)."""
        def change(ledger):
            # nginx stored the file only from the node's reserved address.
            taken = self.svc.take_report(ledger, name, body, entry.get("ip") or "", self.config, time.time())
            return (taken.ledger if taken.outcome == "applied" else None), taken

        outcome, taken = self.transact(name, entry, change)
        if outcome in ("unavailable", "busy"):
            return False
        if outcome == "damaged":
            return True
        self.m_reports.labels(taken.outcome).inc()
        if taken.outcome == "refused":
            LOG.warning("report of %s refused: %s", name, taken.reason)
        elif taken.outcome == "applied":
            LOG.info("report of %s: attempt %s %s (%s)", name, taken.attempt.id, taken.attempt.state,
                     taken.attempt.reason)
        return True

    # ------------------------------------------------------------ status

    def status(self):
        now = time.time()
        table = self.table()
        nodes = {}
        for name in sorted(table):
            ledger = self.ledgers.get(name) or self.lg.NodeLedger(name)
            nodes[name] = self.lg.node_view(ledger, table[name], now)
        return {"format": 1, "server": self.config.server, "writable": self.writable, "error": self.last_error,
                "mirror": self.mirror.status(), "nodes": nodes}

    def probe(self):
        self.m_mirror.set(1 if self.mirror.probe() and self.mirror.usable() else 0)


def make_app(service):
    async def script(request):
        started = time.monotonic()
        table = service.table()
        name = service.svc.node_for(table, request.match_info["file"])
        if name is None:
            return web.Response(status=404, text="no such node\n")
        address = request.headers.get("X-Real-IP") or request.remote or ""
        # Not an attempt and the mirror current: no I/O, answered here; otherwise in a thread, as etcd is asked.
        status, text = (service.quick_script(name, table[name], address)
                        or await asyncio.to_thread(service.answer_script, name, table[name], address))
        service.m_latency.observe(time.monotonic() - started)
        return web.Response(status=status, text=text, content_type="text/plain")

    async def metrics(unused):
        return web.Response(body=service.prom.generate_latest(service.registry),
                            headers={"Content-Type": service.prom.CONTENT_TYPE_LATEST})

    async def status(unused):
        return web.json_response(service.status())

    async def background(app):
        async def loop(interval, func):
            while True:
                try:
                    await asyncio.to_thread(func)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("%s failed", func.__name__)
                await asyncio.sleep(interval)
        # Requests that ask etcd wait on it (a transaction waits for the members' disks): enough threads that
        # many wait at once, which etcd commits together.
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=service.workers, thread_name_prefix="etcd"))
        stop = threading.Event()
        threading.Thread(target=service.mirror.run, args=(stop,), name="mirror", daemon=True).start()
        tasks = [asyncio.create_task(loop(service.report_interval, service.read_reports)),
                 asyncio.create_task(loop(service.sweep_interval, service.refresh)),
                 asyncio.create_task(loop(service.probe_interval, service.probe))]
        yield
        stop.set()
        for task in tasks:
            task.cancel()

    app = web.Application()
    app.router.add_get("/boot/nodes/{file}", script)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.cleanup_ctx.append(background)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default="/etc/orion/boot-service.json")
    parser.add_argument("--lib", default="/usr/local/lib/orion/python",
                        help="where the collection's module_utils are installed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s %(message)s")
    sys.path.insert(0, args.lib)
    # pylint: disable=import-outside-toplevel
    import prometheus_client
    from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy
    from ansible_collections.orionos.diskless.plugins.module_utils import boot_service
    from ansible_collections.orionos.diskless.plugins.module_utils import etcd_gateway
    from ansible_collections.orionos.diskless.plugins.module_utils import fileio
    from ansible_collections.orionos.diskless.plugins.module_utils import ledger
    engine = types.SimpleNamespace(svc=boot_service, lg=ledger, boot_policy=boot_policy, fileio=fileio,
                                   prom=prometheus_client, etcd=etcd_gateway)
    try:
        service = Service(args.config, engine)
    except (OSError, ValueError, etcd_gateway.Unavailable) as exc:
        LOG.error("cannot start: %s: %s", args.config, exc)
        return 2
    os.makedirs(service.config.static_dir, exist_ok=True)
    host, port = service.listen
    LOG.info("listening on %s:%d, ledger in etcd", host, port)
    web.run_app(make_app(service), host=host, port=port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
