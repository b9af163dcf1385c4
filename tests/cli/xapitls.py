"""A TLS front for the xapi simulator (which speaks plain HTTP), as a real xapi serves HTTPS on
443: it terminates TLS with the given certificate and relays bytes to the simulator's TCP port.
Every thread is started and joined by ``XapiTlsFront`` (``close()``)."""

import select
import socket
import ssl
import threading
from typing import List


class XapiTlsFront(object):
    def __init__(self, cert_file: str, key_file: str, backend_port: int, address: str = "127.0.0.1") -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._backend = (address, backend_port)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []  # type: List[threading.Thread]
        self.handshakes = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((address, 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.url = "https://%s:%d/" % (address, self._listener.getsockname()[1])
        self._start(self._accept)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args)
        thread.daemon = True
        with self._lock:
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

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused our certificate
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
        try:
            backend = socket.create_connection(self._backend, timeout=10)
        except OSError:
            tls.close()
            return
        try:
            self._pump(tls, backend)
        except OSError:
            pass
        finally:
            backend.close()
            tls.close()

    def _pump(self, tls: ssl.SSLSocket, backend: socket.socket) -> None:
        while not self._stop.is_set():
            readable = [tls] if tls.pending() else select.select([tls, backend], [], [], 0.2)[0]
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (backend if sock is tls else tls).sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(15)
