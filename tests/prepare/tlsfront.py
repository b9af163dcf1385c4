"""A TLS listener in front of a real engine's Unix socket, as ``dockerd --tlsverify`` would serve
it: the server certificate and CA that prepare-vm --generate-certs wrote, client certificates
required. Every thread is started and joined by ``TlsFront`` (``close()``)."""

import select
import socket
import ssl
import threading


class TlsFront(object):
    def __init__(self, address, port, cert_file, key_file, ca_file, backend_path):
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._context.load_verify_locations(ca_file)
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._backend_path = backend_path
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self.handshakes = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((address, port))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self._start(self._accept)

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args)
        thread.daemon = True
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._start(self._serve, conn)

    def _serve(self, raw):
        raw.settimeout(10)
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.handshakes += 1
        backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            backend.connect(self._backend_path)
            self._pump(tls, backend)
        except OSError:
            pass
        finally:
            backend.close()
            tls.close()

    def _pump(self, tls, backend):
        while not self._stop.is_set():
            if tls.pending():
                readable = [tls]
            else:
                readable, _, _ = select.select([tls, backend], [], [], 0.2)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (backend if sock is tls else tls).sendall(data)

    def close(self):
        self._stop.set()
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(15)
