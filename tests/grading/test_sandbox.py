"""The exercise child's containment, mode by mode: what each promises (kdlab_grader.sandbox) is what it does.

The ``basic`` tests run everywhere; the ``bwrap`` ones need bubblewrap, which CI installs (.ci/run), so there they
run rather than skip (test_grading.test_ci_grades_in_the_strongest_mode asserts bwrap works in CI).
"""

import json
import os
import time

import pytest

from kdlab.errors import KDLabError
from kdlab_grader.sandbox import Limits, Sandbox, bwrap_command, bwrap_works, docker_command

NEEDS_BWRAP = pytest.mark.skipif(bwrap_works() is not None, reason=f"bubblewrap: {bwrap_works()}")
MODES = ["basic", pytest.param("bwrap", marks=NEEDS_BWRAP)]


def _run(mode, code, timeout=30.0, limits=None, outputs=("out.json",)):
    return Sandbox(mode, limits or Limits(memory_bytes=2 << 30, cpu_seconds=60)).run(code, {}, outputs, timeout)


@pytest.mark.parametrize("mode", MODES)
def test_the_environment_is_an_allowlist(mode, monkeypatch):
    monkeypatch.setenv("KDLAB_TEST_SECRET", "s3cret-token")
    done = _run(mode, "import os, json\njson.dump(dict(os.environ), open('out.json', 'w'))")
    env = json.loads(done.files["out.json"])
    assert "KDLAB_TEST_SECRET" not in env and "s3cret-token" not in json.dumps(env)
    assert env["OMP_NUM_THREADS"] == "1" and env["HOME"] == env["TMPDIR"]


@pytest.mark.parametrize("mode", MODES)
def test_the_timeout_kills_the_whole_process_group(mode, tmp_path):
    marker = tmp_path / "survivor"
    grandchild = f"import time; time.sleep(4); open({str(marker)!r}, 'w')"
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}])\ntime.sleep(60)\n"
    start = time.perf_counter()
    done = _run(mode, code, timeout=2.0)
    assert done.timed_out and time.perf_counter() - start < 15
    time.sleep(5)
    assert not marker.exists()  # the grandchild died with it


@pytest.mark.parametrize("mode", MODES)
def test_memory_files_and_output_are_limited(mode):
    done = _run(mode, "try:\n    b = bytearray(3 * 2**30)\n    print('allocated')\nexcept MemoryError:\n"
                      "    print('refused')\n", limits=Limits(memory_bytes=2 << 30))
    assert done.stdout.strip() == "refused"
    done = _run(mode, "open('big', 'wb').write(b'x' * (2 << 20))", limits=Limits(file_bytes=1 << 20))
    assert done.returncode != 0  # SIGXFSZ / EFBIG at the file-size limit
    done = _run(mode, "print('y' * 10**6)", limits=Limits(output_bytes=1000))
    assert len(done.stdout) == 1000


@pytest.mark.parametrize("mode", MODES)
def test_a_fork_bomb_is_stopped_by_the_process_limit(mode):
    code = ("import os, time\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
            "            time.sleep(3); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)\n")
    done = _run(mode, code, limits=Limits(processes=40, memory_bytes=2 << 30))
    if os.geteuid() == 0 and not os.access("/sys/fs/cgroup/pids", os.W_OK):
        pytest.skip("root without a writable pids cgroup: the process limit cannot bind (the gradebook says so)")
    assert 0 < int(done.stdout.strip()) < 60


@NEEDS_BWRAP
def test_bwrap_has_no_network_and_sees_only_python_and_its_folder(tmp_path):
    secret = tmp_path / "instructor-file.txt"
    secret.write_text("grades")
    code = ("import json, os, socket\nout = {}\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
            "    out['net'] = True\nexcept OSError as e:\n    out['net'] = str(e)\n"
            f"out['secret'] = os.path.exists({str(secret)!r})\nout['cwd'] = os.getcwd()\n"
            "out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "try:\n    import kdlab\n    out['kdlab'] = kdlab.__file__\nexcept ImportError:\n    out['kdlab'] = None\n"
            "json.dump(out, open('out.json', 'w'))")
    out = json.loads(_run("bwrap", code).files["out.json"])
    assert out["net"] is not True and out["secret"] is False and out["cwd"] == "/sandbox"
    assert out["kdlab"] is None and max(out["pids"]) < 10  # own PID namespace: none of the grader's processes


def test_bwrap_command_binds_only_what_python_needs(tmp_path):
    cmd = bwrap_command(tmp_path, ["python", "main.py"], {"A": "1"})
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert "/" not in binds and str(tmp_path) in cmd and "--unshare-all" in cmd and "--clearenv" in cmd
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL"


def test_docker_command_has_no_network_and_the_limits():
    cmd = docker_command("img", __import__("pathlib").Path("/x"), ["python", "m.py"], {"A": "1"},
                         Limits(memory_bytes=1 << 30, processes=32))
    assert cmd[cmd.index("--network") + 1] == "none" and "--read-only" in cmd
    assert cmd[cmd.index("--memory") + 1] == str(1 << 30) and cmd[cmd.index("--pids-limit") + 1] == "32"


def test_unknown_or_unavailable_modes_are_clear_errors():
    with pytest.raises(KDLabError, match="use one of"):
        Sandbox("jail")
    with pytest.raises(KDLabError, match="--docker-image"):
        Sandbox("docker")


def test_protections_name_the_mode_and_never_claim_isolation_basic_lacks():
    text = Sandbox("basic").protections()
    assert text.startswith("basic:") and "NO network or filesystem isolation" in text
    if bwrap_works() is None:
        assert Sandbox("auto").protections().startswith("bwrap: no network")


@pytest.fixture
def no_bubblewrap(monkeypatch, tmp_path):
    """bubblewrap made unavailable: a PATH without ``bwrap`` (and bwrap_works' cached answer forgotten)."""
    import kdlab_grader.sandbox as sandbox

    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox.bwrap_works.cache_clear()
    yield
    sandbox.bwrap_works.cache_clear()


def test_auto_without_bubblewrap_or_docker_refuses_and_says_how_to_go_on(no_bubblewrap):
    from kdlab_grader.sandbox import Unconfined

    assert bwrap_works() is not None
    with pytest.raises(Unconfined) as err:
        Sandbox("auto")
    message = str(err.value)
    for needed in ("could read and write your files", "network", "apt-get install bubblewrap",
                   "--sandbox docker --docker-image", "--sandbox basic", "Nothing was run"):
        assert needed in message, needed
    assert Sandbox("basic").mode == "basic"  # accepted explicitly


def test_grade_auto_without_bubblewrap_stops_before_any_student_code_runs(no_bubblewrap, tmp_path, capsys,
                                                                          monkeypatch):
    """``kdlab grade`` exits 2 with the message, having run nothing and written no gradebook; ``--help`` says the
    same."""
    import kdlab_grader.grader as grader
    from kdlab.cli import main

    ran = []
    monkeypatch.setattr(grader, "grade_all", lambda *a, **k: ran.append(a))
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "grades")]) == 2
    assert "--sandbox basic" in capsys.readouterr().err
    assert not ran and not (tmp_path / "grades").exists()
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "else STOP before running any student code" in text and "apt-get install bubblewrap" in text
    assert "--sandbox basic" in text
