"""The simulator as a child process: start it, wait for its ready line, stop it.

Used by tests, benchmarks and tools that need a private xapi; the testbed runs it detached
instead (it must outlive the command that started it).
"""

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

import XenAPI

from xscontainer.errors import XapiError
from xscontainer.xapi.session import open_local_session, open_url_session


class SimulatorProcess:
    def __init__(self, directory: str, hosts: Optional[int] = None, plugins: Optional[str] = None,
                 python: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, extra_args: Sequence[str] = ()) -> None:
        self.directory = directory
        self.argv = [python or sys.executable, "-m", "xscontainer.sim.cli", "--dir", directory]  # type: List[str]
        if hosts is not None:
            self.argv += ["--hosts", str(hosts)]
        if plugins is not None:
            self.argv += ["--plugins", plugins]
        self.argv += list(extra_args)
        self._env = env
        self._cwd = cwd
        self.proc = None  # type: Optional[subprocess.Popen]
        self.info = {}  # type: Dict[str, Any]
        self.stderr_path = os.path.join(directory, "stderr.log")

    def start(self, timeout: float = 60.0) -> Dict[str, Any]:
        os.makedirs(self.directory, exist_ok=True)
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=stderr,
                                         env=self._env, cwd=self._cwd)
        line = self._first_line(timeout)
        if not line:
            self.stop()
            raise XapiError("The xapi simulator did not start: %s" % self._stderr_tail(), code="SIM_NOT_STARTED")
        self.info = json.loads(line.decode("utf-8"))
        return self.info

    def _first_line(self, timeout: float) -> bytes:
        result = []  # type: List[bytes]
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return result[0] if result else b""

    def _stderr_tail(self) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                return handle.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return "(no stderr)"

    @property
    def url(self) -> str:
        return self.info["xapi_url"]

    @property
    def socket_path(self) -> str:
        return self.info["unix_socket"]

    def local_session(self) -> "XenAPI.Session":
        """Logged in over the Unix socket, as dom0's tools are."""
        return open_local_session(self.socket_path)

    def url_session(self) -> "XenAPI.Session":
        return open_url_session(self.url, self.info["username"], self.info["password"])

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode
