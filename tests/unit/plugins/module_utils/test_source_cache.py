"""Unit tests of the verified source cache: mirrors in order, checksums, nothing bad cached."""

import hashlib
import http.server
import os
import threading

import pytest

from ansible_collections.orionos.diskless.plugins.module_utils import source_cache as sc

GOOD = b"the real tarball\n"
BAD = b"a tampered tarball\n"
SHA = hashlib.sha256(GOOD).hexdigest()


def put(directory, name, data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def test_first_mirror_with_the_right_file_wins_and_a_second_run_changes_nothing(tmp_path):
    put(tmp_path / "m1", "other.tar", b"x")
    put(tmp_path / "m2", "pkg.tar", GOOD)
    cache = tmp_path / "cache"
    cache.mkdir()
    mirrors = [str(tmp_path / "m1"), "file://" + str(tmp_path / "m2")]
    result = sc.fetch({"pkg.tar": SHA}, mirrors, str(cache))
    assert result == {"cached": [], "fetched": {"pkg.tar": mirrors[1]}}
    assert (cache / "pkg.tar").read_bytes() == GOOD
    assert sc.fetch({"pkg.tar": SHA}, mirrors, str(cache)) == {"cached": ["pkg.tar"], "fetched": {}}


def test_a_mirror_with_a_tampered_file_is_passed_over(tmp_path):
    put(tmp_path / "bad", "pkg.tar", BAD)
    put(tmp_path / "good", "pkg.tar", GOOD)
    cache = tmp_path / "cache"
    cache.mkdir()
    result = sc.fetch({"pkg.tar": SHA}, [str(tmp_path / "bad"), str(tmp_path / "good")], str(cache))
    assert result["fetched"] == {"pkg.tar": str(tmp_path / "good")}


def test_a_wrong_checksum_everywhere_names_file_expected_and_actual_and_caches_nothing(tmp_path):
    put(tmp_path / "bad", "pkg.tar", BAD)
    put(tmp_path / "bad", "ok.tar", GOOD)
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(sc.SourceError) as err:
        sc.fetch({"pkg.tar": SHA, "gone.tar": "1" * 64, "ok.tar": SHA}, [str(tmp_path / "bad")], str(cache))
    problems = err.value.problems
    assert len(problems) == 2
    assert problems[0] == "gone.tar: expected sha256 %s; %s: not there" % ("1" * 64, tmp_path / "bad")
    assert problems[1] == "pkg.tar: expected sha256 %s; %s: sha256 is %s" % (
        SHA, tmp_path / "bad", hashlib.sha256(BAD).hexdigest())
    assert sorted(os.listdir(cache)) == [".partial", "ok.tar"]
    assert os.listdir(cache / ".partial") == []


def test_a_corrupted_cached_file_is_fetched_again(tmp_path):
    put(tmp_path / "m", "pkg.tar", GOOD)
    put(tmp_path / "cache", "pkg.tar", BAD)
    result = sc.fetch({"pkg.tar": SHA}, [str(tmp_path / "m")], str(tmp_path / "cache"))
    assert result["fetched"] == {"pkg.tar": str(tmp_path / "m")}
    assert (tmp_path / "cache" / "pkg.tar").read_bytes() == GOOD


def test_check_mode_copies_nothing(tmp_path):
    put(tmp_path / "m", "pkg.tar", GOOD)
    result = sc.fetch({"pkg.tar": SHA}, [str(tmp_path / "m")], str(tmp_path / "cache"), check_mode=True)
    assert result["fetched"] == {"pkg.tar": str(tmp_path / "m")}
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("mirrors, expected", [
    ([], "mirrors: must be a non-empty list"),
    (["relative/dir"], "mirrors[0]: 'relative/dir' is neither"),
    (["ftp://host/x"], "mirrors[0]: 'ftp://host/x' is neither"),
])
def test_bad_mirrors_are_named(tmp_path, mirrors, expected):
    with pytest.raises(sc.SourceError) as err:
        sc.fetch({"pkg.tar": SHA}, mirrors, str(tmp_path))
    assert expected in err.value.problems[0]


def test_http_mirror_through_a_download_function(tmp_path):
    """A real HTTP server on loopback serves one good and one tampered mirror."""
    put(tmp_path / "www" / "bad", "pkg.tar", BAD)
    put(tmp_path / "www" / "good", "pkg.tar", GOOD)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        import urllib.request

        def download(url, dest):
            with urllib.request.urlopen(url, timeout=10) as response, open(dest, "wb") as handle:
                handle.write(response.read())

        base = "http://127.0.0.1:%d" % server.server_address[1]
        cache = tmp_path / "cache"
        cache.mkdir()
        with pytest.raises(sc.SourceError) as err:
            sc.fetch({"pkg.tar": SHA, "missing.tar": SHA}, [base + "/bad"], str(cache), download=download)
        assert "404" in err.value.problems[0] and "sha256 is" in err.value.problems[1]
        result = sc.fetch({"pkg.tar": SHA}, [base + "/bad", base + "/good/"], str(cache), download=download)
        assert result["fetched"] == {"pkg.tar": base + "/good/"}
        # A web mirror with the file's pool path: <mirror>/<path>/<file>.
        (cache / "pkg.tar").unlink()
        result = sc.fetch({"pkg.tar": {"sha256": SHA, "path": "good"}}, [base], str(cache), download=download)
        assert result["fetched"] == {"pkg.tar": base}
    finally:
        server.shutdown()
        server.server_close()
