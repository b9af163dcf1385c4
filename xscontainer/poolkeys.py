"""The pool's SSH key pair: generated on first need, kept in xapi secrets named from pool.other_config.

Keys are the original product's (``xscontainer-private-secret-uuid``,
``xscontainer-public-secret-uuid``), so a pool upgraded from it keeps its RSA pair. New pools get
Ed25519. Two hosts racing to create the pair end with one: the private-key entry of
``pool.other_config`` is claimed with ``add_to_other_config``, which only one writer can win.
"""

import threading
import time
from typing import NamedTuple, Optional

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from xscontainer.errors import XapiError
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.maps import add_map_key_if_absent, set_map_key
from xscontainer.xapi.session import SessionSource

PRIVATE_KEY_ENTRY = "xscontainer-private-secret-uuid"
PUBLIC_KEY_ENTRY = "xscontainer-public-secret-uuid"
KEY_COMMENT = "xscontainer"


class PoolKeyPair(NamedTuple):
    private_pem: str  # OpenSSH or PEM text, as stored
    public_line: str  # "type base64 comment"


def generate_keypair(comment: str = KEY_COMMENT) -> PoolKeyPair:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return PoolKeyPair(private, "%s %s" % (public, comment))


def _load_private_key(private_pem: str):
    """The key as a cryptography object. A PEM RSA key (an upgraded pool's, 4096 bits) is loaded
    without cryptography's consistency check, which costs 200+ ms on every plugin call that has no
    warm monitor: the key is ours, read from xapi's secret store, not input to be validated."""
    data = private_pem.encode("ascii")
    if b"OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, password=None)
    return serialization.load_pem_private_key(data, password=None,
                                              unsafe_skip_rsa_key_validation=True)


def public_line_from_private(private_pem: str, comment: str = KEY_COMMENT) -> str:
    """Derive the public key line from the private key text (RSA PEM or OpenSSH format)."""
    key = _load_private_key(private_pem)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (public, comment)


def _pool_ref(session: Session) -> str:
    return session.xenapi.pool.get_all()[0]


def _secret_value(session: Session, uuid: str) -> Optional[str]:
    try:
        return session.xenapi.secret.get_value(session.xenapi.secret.get_by_uuid(uuid))
    except Failure:
        return None


def read_pool_keypair(session: Session) -> Optional[PoolKeyPair]:
    """The pool's key pair, or None when the pool has none yet."""
    config = session.xenapi.pool.get_other_config(_pool_ref(session))
    private_uuid = config.get(PRIVATE_KEY_ENTRY)
    if not private_uuid:
        return None
    private = _secret_value(session, private_uuid)
    if private is None:
        raise XapiError("pool.other_config:%s names secret %s, which does not exist; remove the "
                        "key to let xscontainer create a new pool key." % (PRIVATE_KEY_ENTRY, private_uuid),
                        code="POOL_KEY_MISSING")
    public_uuid = config.get(PUBLIC_KEY_ENTRY)
    public = _secret_value(session, public_uuid) if public_uuid else None
    if not public:
        # The creator writes the public entry right after the private one, or an old pool lost it.
        public = public_line_from_private(private)
    return PoolKeyPair(private, public.strip())


def _create_secret(session: Session, value: str) -> str:
    ref = session.xenapi.secret.create({"value": value, "other_config": {}})
    return session.xenapi.secret.get_uuid(ref)


def _destroy_secret(session: Session, uuid: str) -> None:
    try:
        session.xenapi.secret.destroy(session.xenapi.secret.get_by_uuid(uuid))
    except Failure:
        pass


def ensure_pool_keypair(session: Session) -> PoolKeyPair:
    """Return the pool's key pair, creating it when the pool has none."""
    existing = read_pool_keypair(session)
    if existing is not None:
        return existing
    pair = generate_keypair()
    private_uuid = _create_secret(session, pair.private_pem)
    public_uuid = _create_secret(session, pair.public_line)
    pool = _pool_ref(session)
    if add_map_key_if_absent(session.xenapi.pool, pool, PRIVATE_KEY_ENTRY, private_uuid):
        set_map_key(session.xenapi.pool, pool, PUBLIC_KEY_ENTRY, public_uuid)
        return pair
    # Another host won the race: use its pair, drop ours.
    _destroy_secret(session, private_uuid)
    _destroy_secret(session, public_uuid)
    winner = read_pool_keypair(session)
    if winner is None:
        raise XapiError("The pool key entry vanished while it was being created.", code="POOL_KEY_MISSING")
    return winner


def paramiko_key_from_text(private_pem: str, public_line: str):
    """The pool's private key as a paramiko key object."""
    import io
    import paramiko
    from cryptography.hazmat.primitives.asymmetric import rsa
    key_type = public_line.split()[0] if public_line.split() else ""
    if key_type == "ssh-rsa" and b"OPENSSH PRIVATE KEY" not in private_pem.encode("ascii"):
        key = _load_private_key(private_pem)
        if isinstance(key, rsa.RSAPrivateKey):
            return paramiko.RSAKey(key=key)
    cls = {"ssh-ed25519": paramiko.Ed25519Key, "ssh-rsa": paramiko.RSAKey}.get(
        key_type, paramiko.ECDSAKey)
    return cls.from_private_key(io.StringIO(private_pem))


class PoolKeyCache:
    """Loads the pool key once per process; ``invalidate()`` after a pool change event."""

    def __init__(self, sessions: SessionSource, clock=time.monotonic) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._pair = None  # type: Optional[PoolKeyPair]
        self._pkey = None
        self._clock = clock

    def keypair(self) -> PoolKeyPair:
        with self._lock:
            if self._pair is None:
                with self._sessions() as session:
                    self._pair = ensure_pool_keypair(session)
            return self._pair

    def paramiko_key(self):
        """The private key as a paramiko key object, parsed once."""
        pair = self.keypair()
        with self._lock:
            if self._pkey is None:
                self._pkey = paramiko_key_from_text(pair.private_pem, pair.public_line)
            return self._pkey

    def invalidate(self) -> None:
        with self._lock:
            self._pair = None
            self._pkey = None
