"""The administrator's SSH connection to a VM (paramiko), used once to install the pool's key.

The administrator logs in as the target user with their own key or password, and only after the
VM's host key was verified (``check_host_key``, given by the caller: against the pin, a
fingerprint or the administrator's word), so a password never reaches an unverified host. The
key goes in over SFTP: no user input is ever put into a remote shell command.
"""

import errno
import logging
import stat
from typing import Callable, List, NamedTuple, Optional

import paramiko

from xscontainer.errors import ConnectionFailure, InvalidArgument, XSContainerError
from xscontainer.prepare import authkeys
from xscontainer.prepare.options import WriteFailed
from xscontainer.transport.ssh import closed_unless_handshaken, start_client_for
from xscontainer.transport.tcp import tcp_connect

LOG = logging.getLogger(__name__)


class AdminCredentials(NamedTuple):
    username: str
    pkey: Optional[paramiko.PKey]
    password: Optional[str]
    description: str  # for messages: "the key in FILE" / "the password from FILE"


def load_identity(path: str, passphrase: Optional[Callable[[], str]] = None) -> paramiko.PKey:
    """The private key in ``path`` (any type paramiko reads); ``passphrase()`` is asked only when
    the key is encrypted."""
    try:
        try:
            return paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException:
            if passphrase is None:
                raise InvalidArgument("The key in %s is encrypted and there is no terminal to ask for its "
                                      "passphrase; use an unencrypted copy or run interactively." % path,
                                      code="USAGE")
            return paramiko.PKey.from_path(path, passphrase=passphrase().encode("utf-8"))
    except (OSError, IOError) as exc:
        raise InvalidArgument("Cannot read the key file %s: %s." % (path, exc.strerror or exc),
                              code="USAGE") from exc
    except (paramiko.SSHException, ValueError, UnicodeError) as exc:
        raise InvalidArgument("%s is not a private key paramiko can use (%s)." % (path, exc or "unreadable"),
                              code="USAGE") from exc


def read_secret_file(path: str, what: str) -> str:
    """The first line of ``path`` (a password file), without its line break."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(65536)
    except OSError as exc:
        raise InvalidArgument("Cannot read the %s file %s: %s." % (what, path, exc.strerror or exc),
                              code="USAGE") from exc
    lines = data.decode("utf-8", "replace").splitlines()
    if not lines or not lines[0]:
        raise InvalidArgument("The %s file %s is empty." % (what, path), code="USAGE")
    return lines[0]


def _is_missing(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOENT


class AdminConnection(object):
    """A logged-in SSH connection as the administrator; ``close()`` it (or use ``with``)."""

    def __init__(self, vm_uuid: str, addresses: List[str], credentials: AdminCredentials,
                 check_host_key: Callable[[str, str], None], pinned: Optional[str] = None,
                 port: int = 22, timeout: float = 10.0) -> None:
        """``check_host_key(offered_b64, address)`` raises unless the key is the VM's;
        ``pinned`` (the key pinned already, if any) chooses the host key algorithm to offer."""
        self.vm_uuid = vm_uuid
        self._addresses = addresses
        self._credentials = credentials
        self._check_host_key = check_host_key
        self._pinned = pinned
        self._port = port
        self._timeout = timeout
        self._transport = None  # type: Optional[paramiko.Transport]
        self.address = None  # type: Optional[str]

    def open(self) -> "AdminConnection":
        sock, address = tcp_connect(self._addresses, self._port, self._timeout, self.vm_uuid, "sshd")
        transport = paramiko.Transport(sock)
        with closed_unless_handshaken(transport, self.vm_uuid, address):
            offered = start_client_for(transport, self._pinned, self._timeout)
            self._check_host_key(offered, address)  # before any credential leaves this host
            self._authenticate(transport, address)
        self._transport = transport
        self.address = address
        return self

    def _authenticate(self, transport: paramiko.Transport, address: str) -> None:
        creds = self._credentials
        try:
            if creds.pkey is not None:
                transport.auth_publickey(creds.username, creds.pkey)
            else:
                transport.auth_password(creds.username, creds.password or "")
        except paramiko.BadAuthenticationType as exc:
            raise ConnectionFailure(
                "VM %s (%s) does not accept this way of logging in for user '%s' (it allows: %s); "
                "use %s." % (self.vm_uuid, address, creds.username, ", ".join(exc.allowed_types),
                             "--password-file" if creds.pkey is not None else "--identity"),
                code="ADMIN_AUTH_FAILED", vm_uuid=self.vm_uuid) from exc
        except paramiko.AuthenticationException as exc:
            raise ConnectionFailure(
                "VM %s (%s) refused the login of user '%s' with %s: check the user name and your "
                "credentials." % (self.vm_uuid, address, creds.username, creds.description),
                code="ADMIN_AUTH_FAILED", vm_uuid=self.vm_uuid) from exc
        if not transport.is_authenticated():
            raise ConnectionFailure("VM %s (%s) refused the login of user '%s' with %s."
                                    % (self.vm_uuid, address, creds.username, creds.description),
                                    code="ADMIN_AUTH_FAILED", vm_uuid=self.vm_uuid)

    def install_authorized_key(self, public_line: str) -> bool:
        """Make ``~/.ssh/authorized_keys`` of the logged-in user authorize ``public_line``;
        True when it was added, False when it was there already. Creates ``~/.ssh`` (0700) and
        the file (0600) when missing; an existing file is only appended to."""
        if self._transport is None:
            raise RuntimeError("open() first")
        user = self._credentials.username
        try:
            sftp = paramiko.SFTPClient.from_transport(self._transport)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise WriteFailed("VM %s offers no SFTP service, which is needed to install the key; enable "
                              "the sftp subsystem of its sshd (%s)." % (self.vm_uuid, exc or type(exc).__name__),
                              code="KEY_INSTALL_FAILED", vm_uuid=self.vm_uuid) from exc
        step = "find the home directory"
        try:
            home = sftp.normalize(".")
            ssh_dir = home.rstrip("/") + "/.ssh"
            path = ssh_dir + "/authorized_keys"
            step = "create %s" % ssh_dir
            try:
                if not stat.S_ISDIR(sftp.stat(ssh_dir).st_mode):
                    raise WriteFailed("%s in VM %s is not a directory; fix it by hand." % (ssh_dir, self.vm_uuid),
                                      code="KEY_INSTALL_FAILED", vm_uuid=self.vm_uuid)
            except IOError as exc:
                if not _is_missing(exc):
                    raise
                sftp.mkdir(ssh_dir, 0o700)
                sftp.chmod(ssh_dir, 0o700)
            step = "read %s" % path
            try:
                with sftp.open(path, "r") as handle:
                    existing = handle.read().decode("utf-8", "replace")
                exists = True
            except IOError as exc:
                if not _is_missing(exc):
                    raise
                existing, exists = "", False
            addition = authkeys.text_to_append(existing, public_line)
            if addition is None:
                LOG.info("VM %s: the pool key is already in ~%s/.ssh/authorized_keys", self.vm_uuid, user)
                return False
            step = "write %s" % path
            # "x" (O_EXCL) for a new file: never truncate one that appeared meanwhile.
            with sftp.open(path, "a" if exists else "x") as handle:
                if not exists:
                    handle.chmod(0o600)
                handle.write(addition.encode("utf-8"))
            LOG.info("VM %s: added the pool key to ~%s/.ssh/authorized_keys", self.vm_uuid, user)
            return True
        except XSContainerError:
            raise
        except (IOError, OSError, paramiko.SSHException, EOFError) as exc:
            raise WriteFailed("Cannot %s in VM %s as user '%s': %s." % (step, self.vm_uuid, user,
                                                                       exc or type(exc).__name__),
                              code="KEY_INSTALL_FAILED", vm_uuid=self.vm_uuid) from exc
        finally:
            sftp.close()

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def __enter__(self) -> "AdminConnection":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
