"""Unit tests of the verified source cache: mirrors in order, checksums, nothing bad cached."""

import contextlib
import hashlib
import http.server
import os
import threading
import urllib.request

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


@contextlib.contextmanager
def web(directory):
    """A real HTTP server on loopback serving ``directory``: yields its base URL and a download function."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    def download(url, dest):
        with urllib.request.urlopen(url, timeout=10) as response, open(dest, "wb") as handle:
            handle.write(response.read())

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1], download
    finally:
        server.shutdown()
        server.server_close()


def test_http_mirror_through_a_download_function(tmp_path):
    """A real HTTP server on loopback serves one good and one tampered mirror."""
    put(tmp_path / "www" / "bad", "pkg.tar", BAD)
    put(tmp_path / "www" / "good", "pkg.tar", GOOD)
    with web(tmp_path / "www") as (base, download):
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


# The build host's configured Debian mirrors: the mirror entry "apt".

DEB822 = """\
# The release, then its security archive.
Types: deb deb-src
URIs: http://mirror.example.org/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://off.example.org/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs:
 https://second.example.org/debian
 http://mirror.example.org/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# deb http://commented.example.org/debian bookworm main
deb cdrom:[Debian GNU/Linux 12.0.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm main
deb file:/srv/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/site.gpg] http://site.example.org/debian bookworm main # site
deb-src [ arch=amd64 ] https://src.example.org/debian bookworm main
deb http://security.example.org/debian-security bookworm-security main
deb http://old.example.org/debian-security buster/updates main
rpm http://other.example.org/repo stable main
"""


def apt_tree(tmp_path, sources_list=None, files=None):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in (files or {}).items():
        (etc / "sources.list.d" / name).write_text(text)
    return (str(etc / "sources.list"), str(etc / "sources.list.d"))


def test_deb822_stanzas_in_order_release_first_disabled_left_out_each_uri_once(tmp_path):
    paths = apt_tree(tmp_path, files={"debian.sources": DEB822})
    assert sc.apt_mirrors(paths) == ["http://mirror.example.org/debian", "https://second.example.org/debian"]


def test_one_line_entries_with_options_comments_cdrom_and_file_left_out(tmp_path):
    paths = apt_tree(tmp_path, sources_list=ONE_LINE)
    assert sc.apt_mirrors(paths) == ["http://site.example.org/debian", "https://src.example.org/debian"]


def test_sources_list_first_then_the_directory_in_name_order_only_list_and_sources_files(tmp_path):
    paths = apt_tree(tmp_path, sources_list="deb http://a.example.org/debian bookworm main\n", files={
        "z.list": "deb http://z.example.org/debian bookworm main\n",
        "b.sources": "Types: deb\nURIs: http://b.example.org/debian\nSuites: bookworm\nComponents: main\n",
        "c.list.disabled": "deb http://c.example.org/debian bookworm main\n",
        "d.list.save": "deb http://d.example.org/debian bookworm main\n",
    })
    assert sc.apt_mirrors(paths) == ["http://a.example.org/debian", "http://b.example.org/debian",
                                     "http://z.example.org/debian"]


def test_only_security_or_updates_suites_are_used_when_nothing_else_is_there(tmp_path):
    paths = apt_tree(tmp_path, sources_list="deb http://security.example.org/debian-security bookworm-security main\n")
    assert sc.apt_mirrors(paths) == ["http://security.example.org/debian-security"]


def test_a_suite_keeps_only_the_entries_listing_it(tmp_path):
    paths = apt_tree(tmp_path, sources_list=(
        "deb http://old.example.org/debian bullseye main\ndeb http://new.example.org/debian bookworm main\n"))
    assert sc.apt_mirrors(paths, suite="bookworm") == ["http://new.example.org/debian"]
    assert sc.apt_mirrors(paths) == ["http://old.example.org/debian", "http://new.example.org/debian"]


def test_no_mirror_names_every_file_read(tmp_path):
    paths = apt_tree(tmp_path, files={"local.list": "deb file:/srv/debian bookworm main\n",
                                      "off.sources": DEB822.split("\n\n")[2] + "\n"})
    with pytest.raises(sc.SourceError) as err:
        sc.apt_mirrors(paths)
    assert "no http(s) Debian mirror" in str(err.value)
    assert err.value.problems == [
        "%s: not there" % paths[0],
        "%s/local.list: 0 http(s) mirror(s) in 1 entries" % paths[1],
        "%s/off.sources: 0 http(s) mirror(s) in 0 entries" % paths[1],
    ]


def test_the_apt_entry_is_replaced_in_place_and_an_explicit_list_is_left_alone(tmp_path):
    paths = apt_tree(tmp_path, files={"debian.sources": DEB822})
    assert sc.resolve_mirrors(["/srv/mirror", "apt", "https://second.example.org/debian/"], paths) == [
        "/srv/mirror", "http://mirror.example.org/debian", "https://second.example.org/debian/"]
    # An explicit list (the build tests' offline directory) does not read the apt sources at all.
    assert sc.resolve_mirrors(["/srv/mirror"], (str(tmp_path / "none"),)) == ["/srv/mirror"]
    assert sc.mirror_problems(["apt", "/srv/mirror"]) == []


def test_fetch_through_the_apt_entry_keeps_the_sha256_check(tmp_path):
    """A web mirror of the apt sources is searched as <mirror>/<pool path>/<file>, checked like any other."""
    put(tmp_path / "www" / "debian" / "pool" / "main" / "p" / "pkg", "pkg.tar", BAD)
    put(tmp_path / "www" / "debian" / "pool" / "main" / "p" / "pkg", "good.tar", GOOD)
    with web(tmp_path / "www") as (base, download):
        base += "/debian"
        paths = apt_tree(tmp_path, files={"debian.sources": "Types: deb\nURIs: %s\nSuites: bookworm\n" % base})
        cache = tmp_path / "cache"
        cache.mkdir()
        files = {name: {"sha256": SHA, "path": "pool/main/p/pkg"} for name in ("pkg.tar", "good.tar")}
        with pytest.raises(sc.SourceError) as err:
            sc.fetch(files, ["apt"], str(cache), download=download, apt_paths=paths)
        assert err.value.problems == ["pkg.tar: expected sha256 %s; %s: sha256 is %s" % (
            SHA, base, hashlib.sha256(BAD).hexdigest())]
        assert sorted(os.listdir(cache)) == [".partial", "good.tar"]
