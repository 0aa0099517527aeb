"""The SBU table the build_package module writes."""

from ansible_collections.orionos.diskless.plugins.modules import build_package


def table(**extra):
    rows = [{"name": "musl", "version": "1.2.3", "stage": "toolchain", "seconds": 20.0, "sbu": 0.2,
             "cpu_seconds": 30.0, "cpu_sbu": 0.3, "sbu_estimate": 0.3},
            {"name": "linux", "version": "6.1.8", "stage": "kernel", "seconds": None, "sbu": None,
             "cpu_seconds": None, "cpu_sbu": None, "sbu_estimate": 3}]
    return dict({"profile": "minimal", "sbu_seconds": 100.0, "sbu_cpu_seconds": 100.0, "total_seconds": 20.0,
                 "total_sbu": 0.2, "total_cpu_seconds": 30.0, "total_cpu_sbu": 0.3, "packages": rows}, **extra)


def test_the_table_has_wall_clock_and_cpu_columns():
    text = build_package.report_text(table())
    lines = text.splitlines()
    assert lines[0] == "profile minimal, 1 SBU = 100.0 s (wall clock), 100.0 s (CPU)"
    assert lines[2].split() == ["musl", "1.2.3", "toolchain", "20.0", "0.20", "30.0", "0.30", "0.3"]
    assert lines[3].split() == ["linux", "6.1.8", "kernel", "-", "-", "-", "-", "3"]
    assert lines[-1] == "total 20.0 s, 0.20 SBU; CPU 30.0 s, 0.30 SBU"


def test_a_table_without_a_measured_sbu_says_so():
    text = build_package.report_text(table(sbu_seconds=None, sbu_cpu_seconds=None, total_sbu=None,
                                           total_cpu_sbu=None))
    assert text.splitlines()[0] == "profile minimal, 1 SBU = not measured (wall clock), not measured (CPU)"
    assert text.splitlines()[-1] == "total 20.0 s; CPU 30.0 s"
