"""The keys of a testbed: each VM's SSH host key (made with the VM, pinned in xapi), the pool's
key pair and core's authorized_keys in the VMs, and the login user they are for.

``KeysMixin`` is part of ``Testbed``: it uses the host class's ``_state``, ``_path``,
``vm_dir``, ``xapi_session`` and ``_write_sshd_config``.
"""

import grp
import os
import pwd
from typing import Any, Dict

from xscontainer.testbed import config, pool, system
from xscontainer.testbed.system import TestbedError


def ensure_login_user() -> None:
    """Create the docker group and the `core` user on this machine (the VMs share /etc)."""
    try:
        grp.getgrnam(config.DOCKER_GROUP)
    except KeyError:
        system.run(["groupadd", "--system", config.DOCKER_GROUP])
    try:
        pwd.getpwnam(config.LOGIN_USER)
    except KeyError:
        system.run(["useradd", "--no-create-home", "--home-dir", "/home/" + config.LOGIN_USER,
                    "--shell", "/bin/sh", "--groups", config.DOCKER_GROUP, config.LOGIN_USER])
    if config.LOGIN_USER not in grp.getgrnam(config.DOCKER_GROUP).gr_mem:
        system.run(["usermod", "-aG", config.DOCKER_GROUP, config.LOGIN_USER])
    shadow = system.run(["getent", "shadow", config.LOGIN_USER], check=False).stdout.split(":")
    if len(shadow) > 1 and shadow[1].startswith("!"):
        # Without PAM, sshd refuses any login (even by key) to a locked account; "*" only
        # disables passwords.
        system.run(["usermod", "-p", "*", config.LOGIN_USER])


class KeysMixin:
    def _prepare_vm_files(self, name: str, vm_dir: str, record: Dict[str, Any]) -> None:
        core = pwd.getpwnam(config.LOGIN_USER)
        for sub, mode in (("run", 0o755), ("run/sshd", 0o755), ("home", 0o755), ("docker", 0o710)):
            os.makedirs(os.path.join(vm_dir, sub), exist_ok=True)
            os.chmod(os.path.join(vm_dir, sub), mode)
        for sub in ("home/core", "home/core/.ssh"):
            path = os.path.join(vm_dir, sub)
            os.makedirs(path, exist_ok=True)
            os.chown(path, core.pw_uid, core.pw_gid)
            os.chmod(path, 0o700 if sub.endswith(".ssh") else 0o755)
        key = os.path.join(vm_dir, "ssh_host_ed25519_key")
        for path in (key, key + ".pub"):
            if os.path.exists(path):
                os.unlink(path)
        system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name, "-f", key])
        with open(key + ".pub") as handle:
            key_type, key_b64 = handle.read().split()[:2]
        self._state.set_vm(name, ssh_host_key_type=key_type, ssh_host_key=key_b64)
        self._write_sshd_config(name, record["ip"], record["allow_streamlocal"])

    def authorize_key(self, vm: str, public_line: str) -> None:
        """Make public_line core's only authorized key in the VM (as a config drive would)."""
        core = pwd.getpwnam(config.LOGIN_USER)
        path = os.path.join(self.vm_dir(vm), "home", "core", ".ssh", "authorized_keys")
        tmp = path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(public_line.strip() + "\n")
        os.chown(tmp, core.pw_uid, core.pw_gid)
        os.replace(tmp, path)

    def pool_keypair(self):
        """The pool's SSH key pair (xscontainer.poolkeys.PoolKeyPair), read through xapi.

        Without a simulator (xapi=False) it is the testbed's own pair.
        """
        from xscontainer import poolkeys
        from xscontainer.xapi.session import close_session
        if not self._state.get("xapi"):
            with open(self._path("testbed_key")) as handle:
                private = handle.read()
            return poolkeys.PoolKeyPair(private, poolkeys.public_line_from_private(private))
        session = self.xapi_session()
        try:
            pair = poolkeys.read_pool_keypair(session)
        finally:
            close_session(session)
        if pair is None:
            raise TestbedError("The pool has no xscontainer key pair.", code="TESTBED_NO_POOL_KEY")
        return pair

    def _pin_host_keys(self) -> None:
        keys = {}
        for record in self._state.get("vms", {}).values():
            owner = self._state.vm(record.get("ns_owner") or record["name"]) or record
            if record.get("uuid") and owner.get("ssh_host_key"):
                keys[record["uuid"]] = owner["ssh_host_key"]
        pool.pin_host_keys(self._state.get("xapi"), keys)
