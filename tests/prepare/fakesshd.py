"""A paramiko SSH server on a loopback address that records every authentication attempt (which
method, in what order), so a test can see whether a client sent a password or a key at all.

It accepts ``password`` for any user; it offers no SFTP, so a client that logs in fails right
after (which is enough to know it did log in). Every thread is started and joined here.
"""

import io
import socket
import threading
from typing import List, Tuple

import paramiko

from xscontainer.poolkeys import generate_keypair


class _Recorder(paramiko.ServerInterface):
    def __init__(self, owner: "FakeSshd") -> None:
        self._owner = owner

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_password(self, username, password):
        self._owner.record(("password", username, password))
        return paramiko.AUTH_SUCCESSFUL if password == self._owner.password else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self._owner.record(("publickey", username, key.get_base64()))
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class FakeSshd(object):
    def __init__(self, address: str = "127.0.0.1", password: str = "s3cret") -> None:
        self.host_key = paramiko.Ed25519Key.from_private_key(io.StringIO(generate_keypair().private_pem))
        self.password = password
        self._attempts = []  # type: List[Tuple[str, str, str]]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []  # type: List[threading.Thread]
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((address, 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.address = address
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)

    @property
    def host_key_b64(self) -> str:
        return self.host_key.get_base64()

    def record(self, attempt: Tuple[str, str, str]) -> None:
        with self._lock:
            self._attempts.append(attempt)

    def attempts(self) -> List[Tuple[str, str, str]]:
        with self._lock:
            return list(self._attempts)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args)
        thread.daemon = True
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        try:
            transport.start_server(server=_Recorder(self))
            while transport.is_active() and not self._stop.is_set():
                self._stop.wait(0.1)
        except (paramiko.SSHException, OSError, EOFError):
            pass
        finally:
            transport.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in list(self._threads):
            thread.join(10)

