"""Pure: the command line of ``xscontainer-prepare-vm``, its validation, and which exit code a
failure gets (the codes are the table in ``xscontainer.exitcodes``, also shown by --help)."""

import argparse
from typing import List, NamedTuple, Optional, Sequence

from xscontainer.errors import (ConnectionFailure, InvalidArgument, NotFound, XapiError,
                                XSContainerError)
from xscontainer.exitcodes import (EXIT_INTERNAL, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE,
                                   EXIT_WRITE, EXIT_XAPI, PREPARE_VM, help_text)
from xscontainer.hostkeys import parse_fingerprint

PROG = "xscontainer-prepare-vm"

DEFAULT_REMOTE_CERT_DIR = "/etc/docker/tls"


class Refused(XSContainerError):
    """The administrator did not consent (or could not be asked)."""

    code = "REFUSED_BY_USER"


class WriteFailed(XSContainerError):
    """A file could not be written, in the VM (authorized_keys) or here (certificate files)."""

    code = "WRITE_FAILED"


class PrepareOptions(NamedTuple):
    vm: str
    mode: Optional[str]  # "ssh", "tls", or None with verify_only
    verify_only: bool
    username: Optional[str]
    assume_yes: bool
    identity: Optional[str]
    password_file: Optional[str]
    host_key_fingerprint: Optional[str]  # normalized "SHA256:..."
    ssh_port: int
    timeout: float
    url: Optional[str]
    username_xapi: str
    password_file_xapi: Optional[str]
    ca_file_xapi: Optional[str]
    insecure_xapi: bool
    ca_cert: Optional[str]
    client_cert: Optional[str]
    client_key: Optional[str]
    generate_certs: bool
    server_cert_dir: Optional[str]
    cert_ips: List[str]
    cert_dns: List[str]
    remote_cert_dir: str
    verbose: bool


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit code."""

    def error(self, message):
        raise InvalidArgument(message, code="USAGE")


EPILOG = help_text(PREPARE_VM)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Prepare an existing VM for container management: authorize the pool's SSH key "
                    "for a user in the VM (--mode ssh) or store TLS client certificates for its "
                    "engine (--mode tls), record the settings in xapi, enable monitoring, and check "
                    "that it works.")
    parser.add_argument("--vm", required=True, help="the VM's uuid or name-label")
    parser.add_argument("--mode", choices=("ssh", "tls"), help="how dom0 reaches the VM's engine")
    parser.add_argument("--verify-only", action="store_true",
                        help="change nothing: run the monitoring diagnosis for the VM and print it")
    parser.add_argument("-u", "--username", help="ssh: the user in the VM that monitoring logs in as "
                                                 "(it must be allowed to use the Docker socket)")
    parser.add_argument("-y", "--yes", dest="assume_yes", action="store_true",
                        help="do not ask for confirmation (needed when there is no terminal)")
    parser.add_argument("-i", "--identity", metavar="FILE",
                        help="ssh: your private key file, authorized for USERNAME in the VM")
    parser.add_argument("--password-file", metavar="FILE",
                        help="ssh: a file holding USERNAME's password in the VM (first line). Without "
                             "--identity or this, the password is asked for on the terminal")
    parser.add_argument("--host-key-fingerprint", metavar="SHA256:...",
                        help="ssh: the fingerprint of the VM's SSH host key, as `ssh-keygen -lf "
                             "/etc/ssh/ssh_host_ed25519_key.pub` prints it in the VM. Nothing is sent "
                             "to the VM before its key is verified: without this (and without a key "
                             "pinned already) the fingerprint is shown and must be confirmed on the "
                             "terminal")
    parser.add_argument("--ssh-port", type=int, default=22, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the VM (default 10)")
    parser.add_argument("--url", help="xapi URL of a remote pool (default: this host's local socket)")
    parser.add_argument("--username-xapi", help="user for --url (default root)")
    parser.add_argument("--password-file-xapi", metavar="FILE",
                        help="a file holding the password for --url (asked for when absent)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca-file-xapi", metavar="FILE",
                     help="with an https --url: verify xapi's certificate against this PEM file (the pool's "
                          "certificate, as `xe host-get-server-certificate` prints it, or its CA; default: "
                          "the system's CA store)")
    tls.add_argument("--insecure-xapi", action="store_true",
                     help="with --url: do not verify xapi's certificate (the password can then be read by "
                          "anyone between here and the pool)")
    parser.add_argument("--ca-cert", metavar="FILE", help="tls: the CA certificate of the engine (PEM)")
    parser.add_argument("--client-cert", metavar="FILE", help="tls: dom0's client certificate (PEM)")
    parser.add_argument("--client-key", metavar="FILE", help="tls: dom0's client key (PEM)")
    parser.add_argument("--generate-certs", action="store_true",
                        help="tls: make a throwaway CA plus server and client certificates for the VM")
    parser.add_argument("--server-cert-dir", metavar="DIR",
                        help="tls with --generate-certs: where to write ca.pem, server-cert.pem and "
                             "server-key.pem for the engine (an empty or new directory)")
    parser.add_argument("--cert-ip", action="append", default=[], metavar="IP",
                        help="tls with --generate-certs: an extra address for the server certificate")
    parser.add_argument("--cert-dns", action="append", default=[], metavar="NAME",
                        help="tls with --generate-certs: a DNS name for the server certificate")
    parser.add_argument("--remote-cert-dir", default=DEFAULT_REMOTE_CERT_DIR, metavar="DIR",
                        help="tls: where the engine will read its files, for the printed dockerd flags "
                             "(default %s)" % DEFAULT_REMOTE_CERT_DIR)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def _given(*values) -> List[str]:
    return [v for v in values if v]


def parse_args(argv: Sequence[str]) -> PrepareOptions:
    """Parse and validate; ``InvalidArgument`` (exit 2) says what is wrong."""
    ns = build_parser().parse_args(list(argv))
    if not ns.vm.strip():
        raise InvalidArgument("--vm must name a VM (uuid or name-label).", code="USAGE")
    tls_only = [name for name, value in (("--ca-cert", ns.ca_cert), ("--client-cert", ns.client_cert),
                                         ("--client-key", ns.client_key),
                                         ("--generate-certs", ns.generate_certs),
                                         ("--server-cert-dir", ns.server_cert_dir),
                                         ("--cert-ip", ns.cert_ip), ("--cert-dns", ns.cert_dns)) if value]
    ssh_only = [name for name, value in (("--identity", ns.identity), ("--password-file", ns.password_file),
                                         ("--host-key-fingerprint", ns.host_key_fingerprint))
                if value]
    host_key_fingerprint = None
    if ns.host_key_fingerprint:
        host_key_fingerprint = parse_fingerprint(ns.host_key_fingerprint)
        if host_key_fingerprint is None:
            raise InvalidArgument("--host-key-fingerprint %r is not a SHA256 fingerprint such as "
                                  "ssh-keygen -l prints (SHA256: and 43 base64 characters)."
                                  % ns.host_key_fingerprint, code="USAGE")
    if ns.verify_only:
        if ns.mode or tls_only or ssh_only or ns.username:
            raise InvalidArgument("--verify-only changes nothing: give it only --vm (and xapi options).",
                                  code="USAGE")
    elif ns.mode is None:
        raise InvalidArgument("Give --mode ssh or --mode tls (or --verify-only).", code="USAGE")
    elif ns.mode == "ssh":
        if tls_only:
            raise InvalidArgument("%s only apply to --mode tls." % ", ".join(tls_only), code="USAGE")
        if not ns.username or not ns.username.strip():
            raise InvalidArgument("--mode ssh needs --username: the user in the VM that monitoring logs "
                                  "in as.", code="USAGE")
        if ns.identity and ns.password_file:
            raise InvalidArgument("Give either --identity or --password-file, not both.", code="USAGE")
    else:
        if ssh_only:
            raise InvalidArgument("%s: pushing certificates into the VM over SSH is not supported; "
                                  "install the server files in the VM yourself." % ", ".join(ssh_only),
                                  code="USAGE")
        given = _given(ns.ca_cert, ns.client_cert, ns.client_key)
        if ns.generate_certs and given:
            raise InvalidArgument("Give either --generate-certs or --ca-cert/--client-cert/--client-key, "
                                  "not both.", code="USAGE")
        if not ns.generate_certs and len(given) != 3:
            raise InvalidArgument("--mode tls needs --ca-cert, --client-cert and --client-key together, "
                                  "or --generate-certs.", code="USAGE")
        if ns.generate_certs and not ns.server_cert_dir:
            raise InvalidArgument("--generate-certs needs --server-cert-dir: where to write the engine's "
                                  "ca.pem, server-cert.pem and server-key.pem.", code="USAGE")
        if not ns.generate_certs and (ns.server_cert_dir or ns.cert_ip or ns.cert_dns):
            raise InvalidArgument("--server-cert-dir, --cert-ip and --cert-dns only apply with "
                                  "--generate-certs.", code="USAGE")
        for ip in ns.cert_ip:
            if not _is_ip(ip):
                raise InvalidArgument("--cert-ip %r is not an IP address." % ip, code="USAGE")
    if not ns.url and (ns.username_xapi or ns.password_file_xapi or ns.ca_file_xapi or ns.insecure_xapi):
        raise InvalidArgument("--username-xapi, --password-file-xapi, --ca-file-xapi and --insecure-xapi only "
                              "apply with --url.", code="USAGE")
    if not 0 < ns.ssh_port < 65536:
        raise InvalidArgument("--ssh-port must be between 1 and 65535.", code="USAGE")
    if not ns.timeout > 0:
        raise InvalidArgument("--timeout must be positive.", code="USAGE")
    return PrepareOptions(
        vm=ns.vm.strip(), mode=ns.mode, verify_only=ns.verify_only,
        username=ns.username.strip() if ns.username else None, assume_yes=ns.assume_yes,
        identity=ns.identity, password_file=ns.password_file, host_key_fingerprint=host_key_fingerprint,
        ssh_port=ns.ssh_port, timeout=ns.timeout,
        url=ns.url, username_xapi=ns.username_xapi or "root", password_file_xapi=ns.password_file_xapi,
        ca_file_xapi=ns.ca_file_xapi, insecure_xapi=ns.insecure_xapi,
        ca_cert=ns.ca_cert, client_cert=ns.client_cert, client_key=ns.client_key,
        generate_certs=ns.generate_certs, server_cert_dir=ns.server_cert_dir, cert_ips=list(ns.cert_ip),
        cert_dns=list(ns.cert_dns), remote_cert_dir=ns.remote_cert_dir, verbose=ns.verbose)


def _is_ip(text: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def exit_code_for(exc: XSContainerError) -> int:
    """The exit code of a failure."""
    if isinstance(exc, Refused):
        return EXIT_REFUSED
    if isinstance(exc, WriteFailed):
        return EXIT_WRITE
    if isinstance(exc, InvalidArgument):
        return EXIT_USAGE
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConnectionFailure):
        return EXIT_UNREACHABLE
    if isinstance(exc, XapiError):
        return EXIT_XAPI
    return EXIT_INTERNAL
