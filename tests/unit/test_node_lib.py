"""The node functions (roles/lfs_system/files/rootfs/usr/lib/orion/lib.sh) run
as the node runs them: BusyBox sh with only BusyBox applets on PATH. The
JSON reader gets any content a server could send; orion_previous reads a
node's last report back from HTTP servers on loopback (one with a shutdown
report, one with a boot report, one with none, one that does not answer)."""

import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "roles", "lfs_system", "files", "rootfs", "usr", "lib", "orion", "lib.sh")
BUSYBOX = shutil.which("busybox")

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (tests/rig/host-setup.sh installs it)")


@pytest.fixture(scope="module")
def applets(tmp_path_factory):
    """A directory of BusyBox's applets, the only PATH the scripts get."""
    where = tmp_path_factory.mktemp("applets")
    for name in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split():
        os.symlink(BUSYBOX, str(where / name))
    return str(where)


def node_sh(applets, script, run_dir):
    """Run script after the node functions, with ORION_RUN set to run_dir."""
    return subprocess.run([BUSYBOX, "sh", "-c", '. "$1"; ORION_RUN="$2"; %s' % script, "sh", LIB, str(run_dir)],
                          capture_output=True, text=True, env={"PATH": applets}, timeout=60, check=False)


GOOD = {"format": 1, "node": "n1", "event": "shutdown", "boot_id": "0b9c52a4-7b2e-4d7c-9d61-3f1f8e0c6a11",
        "action": "reboot", "result": "shutdown", "reason": 'a "quoted" \\ reason \u00e9', "image": "minimal-1",
        "fallback": False, "boot_seconds": 12.5, "paths": [{"server": "10.0.0.2", "rtt_ms": "0.5"}],
        "phases": {"dhcp": 1.25, "deep": {"x": [1, 2, [], {}]}}, "none": None, "e": -1.5e3}


def test_the_json_reader_gives_the_top_level_scalars_as_written(applets, tmp_path):
    (tmp_path / "body").write_text(json.dumps(GOOD, indent=2) + "\n")
    out = node_sh(applets, 'orion_json_fields "$ORION_RUN/body"', tmp_path)
    assert out.returncode == 0, out.stderr
    fields = dict(line.split("\t", 1) for line in out.stdout.splitlines())
    assert fields['"event"'] == '"shutdown"' and fields['"boot_seconds"'] == "12.5"
    assert fields['"fallback"'] == "false" and fields['"none"'] == "null"
    # Strings as written, each a JSON string of its own.
    assert json.loads(fields['"reason"']) == GOOD["reason"]
    assert '"paths"' not in fields and '"phases"' not in fields


@pytest.mark.parametrize("body", [
    b"", b"null", b"[1, 2]", b"<html>404 Not Found</html>", b'{"a": "b"', b'{"a": "b"} x', b'{"a": "b",}',
    b'{"a": tru}', b'{"a": 01}', b'{"a": "\\x"}', b'{"a": "b\tc"}', b'{"a": "b\nc"}', b'{"a": "b\x00"}',
    b'{"a" "b"}', b'{a: 1}', b'{"a": [1, 2}', b'{"a": "\\u12"}', b'{"a": 1.}', b'{"a": -}',
    b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", b"\xff\xfe{}"])
def test_the_json_reader_refuses_what_is_not_one_json_object(applets, tmp_path, body):
    (tmp_path / "body").write_bytes(body)
    out = node_sh(applets, 'orion_json_fields "$ORION_RUN/body"', tmp_path)
    assert out.returncode != 0 and out.stdout == "", (body, out.stdout)


DOWN = object()


class Server:
    """An HTTP server on a loopback address answering GET /reports/n1.json with a body (None: 404)."""

    def __init__(self, address, port, body):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                if outer.body is None or self.path != "/reports/n1.json":
                    self.send_error(404)
                    return
                data = outer.body if isinstance(outer.body, bytes) else json.dumps(outer.body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.body = body
        self.httpd = http.server.HTTPServer((address, port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def previous(applets, tmp_path, bodies):
    """orion_previous with the servers 127.0.0.1, .2, ... in that order, one per body (DOWN: none
    listens there), all on one port as the boot servers are; (its answer, whether it was kept)."""
    servers, port = [], 0
    try:
        for i, body in enumerate(bodies):
            if body is not DOWN:
                servers.append(Server("127.0.0.%d" % (i + 1), port, body))
                port = servers[-1].port
        if not port:
            spare = Server("127.0.0.1", 0, None)
            port = spare.port
            spare.close()
        run = tmp_path / "run"
        run.mkdir()
        (run / "node").write_text("n1\n")
        (run / "report-servers").write_text(" ".join("127.0.0.%d" % (i + 1) for i in range(len(bodies))) + "\n")
        (run / "http-port").write_text("%d\n" % port)
        out = node_sh(applets, "orion_previous", run)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout), (run / "previous.json").exists()
    finally:
        for server in servers:
            server.close()


BOOT = {key: value for key, value in dict(GOOD, event="boot", result="ok").items() if key != "action"}


def test_previous_is_clean_after_a_shutdown_report(applets, tmp_path):
    assert previous(applets, tmp_path, [GOOD]) == ({"end": "clean", "action": "reboot", "image": "minimal-1",
                                                    "boot_id": GOOD["boot_id"], "server": "127.0.0.1"}, True)


def test_previous_is_unclean_after_a_boot_report(applets, tmp_path):
    assert previous(applets, tmp_path, [BOOT]) == ({"end": "unclean", "image": "minimal-1",
                                                    "boot_id": GOOD["boot_id"], "server": "127.0.0.1"}, True)


def test_a_shutdown_report_wins_over_a_boot_report_of_the_same_boot(applets, tmp_path):
    # The first server was down when the node went down: it still has the boot report.
    got = previous(applets, tmp_path, [BOOT, None, GOOD])[0]
    assert (got["end"], got["server"]) == ("clean", "127.0.0.3"), got


def test_otherwise_the_first_server_that_has_a_report_answers(applets, tmp_path):
    older = dict(GOOD, boot_id="11111111-2222-3333-4444-555555555555")
    got = previous(applets, tmp_path, [DOWN, b"<html>", BOOT, older])[0]
    assert (got["end"], got["server"], got["boot_id"]) == ("unclean", "127.0.0.3", GOOD["boot_id"]), got


@pytest.mark.parametrize("body", [None, b"<html>oops</html>", b'{"event": "shutdown"', dict(GOOD, event="other"),
                                  {"format": 1, "node": "n1", "result": "ok"}])
def test_previous_is_unknown_without_a_report_that_parses(applets, tmp_path, body):
    # The server answered: the answer stands for the boot's later reports.
    assert previous(applets, tmp_path, [body]) == ({"end": "unknown"}, True)


def test_previous_is_unknown_and_asked_again_when_no_server_answers(applets, tmp_path):
    assert previous(applets, tmp_path, [DOWN, DOWN]) == ({"end": "unknown"}, False)


def test_a_value_that_is_not_a_plain_string_is_left_out(applets, tmp_path):
    got = previous(applets, tmp_path, [dict(GOOD, image='x","end":"forged', boot_id=7)])[0]
    assert got == {"end": "clean", "action": "reboot", "image": "", "boot_id": "", "server": "127.0.0.1"}
