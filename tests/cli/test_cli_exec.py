"""``xscontainer exec`` against the shared testbed's real dockerd: exit codes, separated streams,
binary-safe stdin, a large output, and an interactive terminal driven through tmux."""

import os
import shutil
import subprocess
import sys

import pytest

from waiting import wait_for


@pytest.fixture(scope="module")
def run(testbed):
    info = testbed.info()
    vm1 = info["vms"][0]
    inventory = [h["inventory"] for h in info["hosts"] if h["uuid"] == vm1["host_uuid"]][0]
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=info["unix_socket"], XSCONTAINER_INVENTORY=inventory)

    def call(*argv, stdin=b""):
        return subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "exec"] + list(argv),
                              env=env, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=120)
    def attach(container, stdin=b""):
        return subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "attach", vm1["name_label"], container],
                              env=env, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    call.env = env
    call.vm = vm1["name_label"]
    call.attach = attach
    return call


def test_exit_code_and_separate_streams(run):
    result = run(run.vm, "web", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 7")
    assert result.returncode == 7, result.stderr
    assert result.stdout == b"to-out\n"
    assert result.stderr == b"to-err\n"
    assert run(run.vm, "web", "--", "true").returncode == 0


def test_options_reach_the_command(run):
    result = run("-u", "65534:65534", "-w", "/tmp", "-e", "GREETING=hé llo", run.vm, "web", "--",
                 "sh", "-c", 'id -u; pwd; echo "$GREETING"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8").splitlines() == ["65534", "/tmp", "hé llo"]


def test_stdin_is_binary_safe_and_its_end_reaches_the_command(run):
    payload = bytes(range(256)) * 4096 + b"\r\n\x00\xff end"
    result = run("-i", run.vm, "web", "--", "cat", stdin=payload)
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload


def test_a_large_output_arrives_whole(run):
    size = 8 * 1024 * 1024
    result = run(run.vm, "web", "--", "sh", "-c", "head -c %d /dev/zero | tr '\\0' x" % size)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == size and set(result.stdout) == {ord("x")}


def test_errors_before_the_command_runs(run):
    missing = run(run.vm, "no-such-container", "--", "true")
    assert missing.returncode == 3 and b"CONTAINER_NOT_FOUND" in missing.stderr
    usage = run(run.vm, "web")
    assert usage.returncode == 2
    stopped = run(run.vm, "exited", "--", "true")
    assert stopped.returncode == 1 and b"ENGINE_ERROR" in stopped.stderr


def _pane(session):
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], stdout=subprocess.PIPE,
                          universal_newlines=True).stdout


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_interactive_terminal_through_tmux(run, tmp_path):
    session = "xsc-exec-%d" % os.getpid()
    status = tmp_path / "status"
    script = tmp_path / "run.sh"
    script.write_text("%s -m xscontainer.cli.main exec -i -t %s web -- sh; echo $? > %s\n"
                      % (sys.executable, run.vm, status))
    env = dict(run.env, PS1="")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    "sh " + str(script)], env=env, check=True)
    try:
        wait_for(lambda: "#" in _pane(session), 60, "the container's shell prompt")
        subprocess.run(["tmux", "send-keys", "-t", session, "stty size", "Enter"], check=True)
        wait_for(lambda: "30 100" in _pane(session), 30, "stty size 30 100")
        subprocess.run(["tmux", "resize-window", "-t", session, "-x", "120", "-y", "40"], check=True)

        def resized():  # the SIGWINCH reaches the CLI asynchronously: ask until the size shows
            subprocess.run(["tmux", "send-keys", "-t", session, "clear; stty size", "Enter"], check=True)
            return "40 120" in _pane(session)
        wait_for(resized, 30, "stty size 40 120 after the resize", interval=1.0)
        subprocess.run(["tmux", "send-keys", "-t", session, "exit 5", "Enter"], check=True)
        wait_for(lambda: status.exists() and status.read_text().strip(), 30, "the CLI's exit")
        assert status.read_text().strip() == "5"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)


def test_through_the_monitor_no_new_ssh_connection(run, testbed, tmp_path):
    """With this host's monitor watching the VM, exec rides its warm connection: it still works
    when the VM's sshd accepts no new connection at all (which a direct connection needs)."""
    from xscontainer.errors import XSContainerError
    from xscontainer.transport.control import control_call, control_socket_path
    from xscontainer.xapi.maps import set_map_key
    from xscontainer.xapi.session import close_session, open_local_session
    info = testbed.info()
    vm = [v for v in info["vms"] if v["name_label"] == run.vm][0]
    host = [h for h in info["hosts"] if h["uuid"] == vm["host_uuid"]][0]
    session = open_local_session(info["unix_socket"])
    ref = session.xenapi.VM.get_by_uuid(vm["uuid"])
    monitor = subprocess.Popen([sys.executable, "-m", "xscontainer.monitor.cli", "--inventory", host["inventory"],
                                "--log-file", str(tmp_path / "monitor.log")], env=run.env)
    block = ["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "22", "--syn", "-j", "REJECT"]
    try:
        set_map_key(session.xenapi.VM, ref, "xscontainer-monitor", "True")

        def watching():  # docker_ps may be an earlier test's: ask this monitor itself
            try:
                status = control_call(control_socket_path(host["uuid"]), "status", {"vm": vm["uuid"]})
            except XSContainerError:
                return False  # not listening yet
            return status is not None and status.get("state") == "monitored"  # None: not watched yet
        wait_for(watching, 60, "the monitor watching the VM")
        assert testbed.vm_exec(run.vm, block).returncode == 0
        result = run("-i", run.vm, "web", "--", "sh", "-c", "cat; echo done >&2; exit 3", stdin=b"abc\x00")
        assert result.returncode == 3, result.stderr
        assert (result.stdout, result.stderr) == (b"abc\x00", b"done\n")
        monitor.terminate()
        assert monitor.wait(30) == 0
        direct = run(run.vm, "web", "--", "true")
        assert direct.returncode == 4, direct.stderr  # no monitor: a new connection, which is refused
    finally:
        testbed.vm_exec(run.vm, ["iptables", "-D"] + block[2:])
        if monitor.poll() is None:
            monitor.terminate()
            monitor.wait(30)
        session.xenapi.VM.remove_from_other_config(ref, "xscontainer-monitor")
        for key in ("docker_ps", "docker_info", "docker_version"):
            try:
                session.xenapi.VM.remove_from_other_config(ref, key)
            except Exception:
                pass
        close_session(session)


@pytest.fixture
def scratch_container(testbed, run):
    """Containers made for one test, removed afterwards."""
    from xscontainer.testbed import naming
    names = []

    def make(name, argv, tty=False, stdin=False):
        names.append(name)
        flags = (["-t"] if tty else []) + (["-i"] if tty or stdin else [])
        testbed.docker(run.vm, ["run", "-d"] + flags + ["--name", name, naming.IMAGE_TAG] + argv)
        return name
    yield make
    for name in names:
        testbed.docker(run.vm, ["rm", "-f", name], check=False)


def test_logs_follow_streams_new_lines_until_stopped(run, scratch_container):
    name = scratch_container("ticker", ["sh", "-c", "i=0; while :; do echo tick$i; echo tock$i >&2; i=$((i+1)); "
                                                    "sleep 0.1; done"])
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.cli.main", "logs", "-f", "--tail", "1", run.vm, name],
                            env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        assert proc.stderr.readline().startswith(b"tock")
    finally:
        proc.terminate()
        proc.wait(30)
    numbers = [int(line.strip()[len(b"tick"):]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 5))  # in order, none lost, still coming


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_attach_and_detach_keys_leave_the_container_running(run, testbed, scratch_container, tmp_path):
    name = scratch_container("attachme", ["sh"], tty=True)
    session = "xsc-attach-%d" % os.getpid()
    status = tmp_path / "status"
    script = tmp_path / "run.sh"
    script.write_text("%s -m xscontainer.cli.main attach %s %s; echo $? > %s\n" % (sys.executable, run.vm, name, status))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh " + str(script)],
                   env=run.env, check=True)
    try:
        def echoed():  # attach shows nothing until the shell prints: type until the echo shows
            subprocess.run(["tmux", "send-keys", "-t", session, "echo attached-$((6*7))", "Enter"], check=True)
            return "attached-42" in _pane(session)
        wait_for(echoed, 60, "the attached shell's answer", interval=1.0)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-p", "C-q"], check=True)
        wait_for(lambda: status.exists() and status.read_text().strip(), 30, "the CLI's exit after ctrl-p ctrl-q")
        assert status.read_text().strip() == "0"
        state = testbed.docker(run.vm, ["inspect", "-f", "{{.State.Running}}", name]).stdout.strip()
        assert state == "true"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)


def test_attach_returns_the_exit_code_when_the_process_ends(run, scratch_container):
    name = scratch_container("catter", ["sh", "-c", "read line; echo got:$line; exit 9"], stdin=True)
    # stdin stays open until the output came: its end would detach, as with `docker attach`.
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.cli.main", "attach", run.vm, name], env=run.env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"got:hello\n"
        assert proc.wait(60) == 9, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    again = run.attach(name)
    assert again.returncode == 1 and b"CONTAINER_NOT_RUNNING" in again.stderr
