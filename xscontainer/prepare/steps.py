"""What prepare-vm does, step by step, over an xapi session and a ``Console`` (the terminal).

Every change comes after the administrator's consent; every failure is an ``XSContainerError``
that ``options.exit_code_for`` turns into the documented exit code.
"""

import getpass
import logging
import sys
from typing import Callable, List, Optional

from xscontainer.engine.diagnose import diagnose
from xscontainer.errors import ConnectionFailure, InvalidArgument, XapiError
from xscontainer.exitcodes import EXIT_FAILED, EXIT_OK
from xscontainer.hostkeys import XapiHostKeyPin, describe_key, fingerprint, key_type_of_blob, mismatch_error
from xscontainer.poolkeys import ensure_pool_keypair
from xscontainer.prepare import tls as tlsfiles
from xscontainer.prepare.guest import AdminConnection, AdminCredentials, load_identity, read_secret_file
from xscontainer.prepare.options import PrepareOptions, Refused
from xscontainer.prepare.vm import (VmChoice, find_vm, record_settings, ssh_settings, tls_settings,
                                    vm_addresses)
from xscontainer.tlscerts import generate_tls_bundle, store_client_tls
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.session import lend

LOG = logging.getLogger(__name__)


class Console(object):
    """The terminal: ``say`` (stdout), ``error`` (stderr), ``ask`` a line, ``secret`` without echo.
    ``interactive`` is False when stdin is not a terminal: then nothing may be asked."""

    def __init__(self, stdin=None, stdout=None, stderr=None,
                 getpass_fn: Callable[[str], str] = getpass.getpass, interactive: Optional[bool] = None) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self._getpass = getpass_fn
        if interactive is None:
            try:
                interactive = self._stdin.isatty()
            except (AttributeError, ValueError):
                interactive = False
        self.interactive = interactive

    def say(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()

    def error(self, text: str) -> None:
        self._stderr.write(text + "\n")
        self._stderr.flush()

    def ask(self, prompt: str) -> str:
        self._stdout.write(prompt)
        self._stdout.flush()
        return self._stdin.readline()

    def secret(self, prompt: str) -> str:
        return self._getpass(prompt)


def confirm(console: Console, plan: List[str], assume_yes: bool) -> None:
    """Show the plan, then go on only with the administrator's yes (``Refused`` otherwise)."""
    for line in plan:
        console.say(line)
    if assume_yes:
        return
    if not console.interactive:
        raise Refused("Nothing was changed: this needs your confirmation and there is no terminal to ask "
                      "it on. Pass --yes to proceed without asking.", code="NO_CONSENT")
    answer = console.ask("Proceed? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Refused("Nothing was changed: you did not confirm.", code="REFUSED_BY_USER")


def file_credentials(options: PrepareOptions, console: Console) -> Optional[AdminCredentials]:
    """The administrator's credentials from files (read before anything else happens), or None
    when the password must be asked for on the terminal."""
    if options.identity:
        passphrase = None
        if console.interactive:
            path = options.identity
            passphrase = lambda: console.secret("Passphrase for %s: " % path)  # noqa: E731
        return AdminCredentials(options.username, load_identity(options.identity, passphrase), None,
                                "the key in %s" % options.identity)
    if options.password_file:
        return AdminCredentials(options.username, None, read_secret_file(options.password_file, "password"),
                                "the password from %s" % options.password_file)
    if not console.interactive:
        raise InvalidArgument("There is no terminal to ask for the password of '%s': give --identity or "
                              "--password-file." % options.username, code="USAGE")
    return None


def _xapi(action: str, call: Callable[[], object]):
    try:
        return call()
    except (Failure, OSError) as exc:
        details = exc.details if isinstance(exc, Failure) else exc
        raise XapiError("xapi refused to %s: %s" % (action, details)) from exc


def verify(session: Session, vm: VmChoice, console: Console, timeout: float) -> int:
    """Run the engine layer's diagnosis: 0 when monitoring works, 1 (diagnosis printed) otherwise."""
    result = diagnose(lend(session), vm.uuid, timeout=timeout)
    if result.ok:
        console.say("Monitoring works: %s" % result.message)
        return EXIT_OK
    console.error("Monitoring of VM %s does not work yet: %s: %s" % (vm.uuid, result.code, result.message))
    return EXIT_FAILED  # prepared, but monitoring does not work yet


def _describe(vm: VmChoice) -> str:
    return "VM %s (%s)" % (vm.name_label, vm.uuid) if vm.name_label else "VM %s" % vm.uuid


def host_key_checker(options: PrepareOptions, console: Console, vm: VmChoice, pin) -> Callable[[str, str], None]:
    """The check AdminConnection runs on the VM's host key before sending any credential: the key
    pinned already, else the fingerprint given, else the administrator's answer. A key verified
    here is pinned (a dom0-side act), so the monitor trusts it afterwards."""
    def check(offered: str, address: str) -> None:
        state = pin.state()
        if state.pinned is not None:
            if state.pinned != offered:
                raise mismatch_error(vm.uuid, state.pinned, offered)
            return
        seen = describe_key(offered)
        expected = options.host_key_fingerprint or state.expected
        if expected:
            if fingerprint(offered) != expected:
                raise ConnectionFailure(
                    "The SSH host key of %s at %s is %s, not the %s %s: nothing was sent to it. "
                    "Something else answers at that address, or the fingerprint is of another key."
                    % (_describe(vm), address, seen, expected,
                       "you gave" if options.host_key_fingerprint else "registered for it"),
                    code="HOSTKEY_FINGERPRINT_MISMATCH", vm_uuid=vm.uuid)
        elif not console.interactive:
            raise Refused(
                "The SSH host key of %s at %s is %s and nothing vouches for it, so nothing was sent to "
                "it. Check it in the VM (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub, on its console) and "
                "run this again with --host-key-fingerprint %s."
                % (_describe(vm), address, seen, _key_file_type(offered), fingerprint(offered)),
                code="HOSTKEY_NOT_VERIFIED", vm_uuid=vm.uuid)
        else:
            console.say("The SSH host key of %s at %s is:\n  %s" % (_describe(vm), address, seen))
            console.say("Compare it with the VM's own, on its console: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub"
                        % _key_file_type(offered))
            answer = console.ask("Is it the same? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise Refused("Nothing was sent to %s: you did not confirm its host key." % _describe(vm),
                              code="HOSTKEY_NOT_VERIFIED", vm_uuid=vm.uuid)
        pin.pin_verified(offered)
    return check


def _key_file_type(b64: str) -> str:
    kind = key_type_of_blob(b64) or ""
    return {"ssh-rsa": "rsa", "ssh-dss": "dsa"}.get(kind, "ecdsa" if kind.startswith("ecdsa") else "ed25519")


def prepare_ssh(options: PrepareOptions, session: Session, console: Console,
                credentials: Optional[AdminCredentials]) -> int:
    user = options.username
    vm = find_vm(session, options.vm)
    if vm.power_state != "Running":
        raise ConnectionFailure("%s is %s: start it (with its engine and sshd) and run this again."
                                % (_describe(vm), vm.power_state or "not running"),
                                code="VM_NOT_RUNNING", vm_uuid=vm.uuid)
    addresses = vm_addresses(session, vm)
    confirm(console, [
        "This will, for %s:" % _describe(vm),
        "  - log in to it as '%s' with your credentials and add this pool's SSH public key to "
        "~%s/.ssh/authorized_keys (once: a key already there is left alone);" % (user, user),
        "  - before sending anything, check its SSH host key (against the key pinned already, or "
        "--host-key-fingerprint, or your answer) and pin it; record user '%s' and mode 'ssh' in its "
        "other-config;" % user,
        "  - enable container monitoring for it, then check that monitoring works.",
        "The pool's key lets every host of this pool run Docker commands in the VM as '%s'." % user,
    ], options.assume_yes)
    if credentials is None:
        credentials = AdminCredentials(user, None, console.secret("Password of %s in %s: " % (user, _describe(vm))),
                                       "the password typed")
    public_line = _xapi("read or create the pool's SSH key", lambda: ensure_pool_keypair(session)).public_line
    pin = XapiHostKeyPin(lend(session), vm.uuid)
    check = host_key_checker(options, console, vm, pin)
    with AdminConnection(vm.uuid, addresses, credentials, check, pinned=pin.get(), port=options.ssh_port,
                         timeout=options.timeout) as connection:
        added = connection.install_authorized_key(public_line)
        address = connection.address
    if added:
        console.say("Added the pool's SSH key to ~%s/.ssh/authorized_keys in %s (%s)." % (user, _describe(vm), address))
    else:
        console.say("The pool's SSH key is already in ~%s/.ssh/authorized_keys in %s: nothing written."
                    % (user, _describe(vm)))
    record_settings(session, vm, ssh_settings(user))
    console.say("Recorded user '%s' and mode 'ssh'; monitoring is enabled." % user)
    return verify(session, vm, console, options.timeout)


def _unique(values: List[str]) -> List[str]:
    seen = []  # type: List[str]
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def prepare_tls(options: PrepareOptions, session: Session, console: Console) -> int:
    given = None
    if options.generate_certs:
        tlsfiles.check_server_dir(options.server_cert_dir)
    else:
        given = tlsfiles.read_client_material(options.ca_cert, options.client_cert, options.client_key)
    vm = find_vm(session, options.vm)
    plan = ["This will, for %s:" % _describe(vm)]
    ips = []  # type: List[str]
    if options.generate_certs:
        ips = _unique(vm_addresses(session, vm) + options.cert_ips)
        if not ips and not options.cert_dns:
            raise InvalidArgument("%s reports no IP address, so the engine's certificate cannot name it: "
                                  "pass --cert-ip (or --cert-dns)." % _describe(vm), code="USAGE")
        plan.append("  - make a new CA and an engine certificate valid for %s, and write ca.pem, "
                    "server-cert.pem and server-key.pem into %s (the CA's key is thrown away);"
                    % (", ".join(ips + options.cert_dns), options.server_cert_dir))
    plan += ["  - store the CA and dom0's client certificate and key as xapi secrets named in its "
             "other-config (replacing any previous ones), and set mode 'tls';",
             "  - enable container monitoring for it%s." % (
                 "" if options.generate_certs else ", then check that monitoring works")]
    if options.generate_certs:
        plan.append("Monitoring will fail until its engine serves TLS with the new files (see below).")
    confirm(console, plan, options.assume_yes)
    if options.generate_certs:
        bundle = generate_tls_bundle(ips, list(options.cert_dns))
        paths = tlsfiles.write_server_files(options.server_cert_dir, bundle)
    else:
        bundle, paths = given, []
    _xapi("store the TLS secrets of VM %s" % vm.uuid, lambda: store_client_tls(session, vm.uuid, bundle))
    record_settings(session, vm, tls_settings())
    console.say("Stored the TLS client certificate, key and CA for %s; mode 'tls', monitoring enabled."
                % _describe(vm))
    if not options.generate_certs:
        return verify(session, vm, console, options.timeout)
    flags = tlsfiles.dockerd_flags(options.remote_cert_dir)
    console.say("Wrote the engine's files: %s" % ", ".join(paths))
    console.say("Next, in the VM: copy them into %s (server-key.pem readable by root only) and run the "
                "engine with:" % options.remote_cert_dir)
    console.say("  dockerd " + " ".join(flags))
    console.say("or, equivalently, this /etc/docker/daemon.json (remove any -H from the service's "
                "command line):")
    console.say(tlsfiles.daemon_json(options.remote_cert_dir))
    console.say("Then check monitoring with: xscontainer-prepare-vm --vm %s --verify-only" % vm.uuid)
    return EXIT_OK


def verify_only(options: PrepareOptions, session: Session, console: Console) -> int:
    return verify(session, find_vm(session, options.vm), console, options.timeout)
