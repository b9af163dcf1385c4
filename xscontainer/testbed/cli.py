"""xscontainer-testbed: bring a testbed up or down, or run a command inside one of its VMs.

    xscontainer-testbed up --dir DIR [--hosts H] [--vms N] [--containers C] [--no-monitor]
                           [--addresses-per-namespace K]
    xscontainer-testbed down --dir DIR
    xscontainer-testbed vm-exec --dir DIR VM -- CMD...
    xscontainer-testbed info --dir DIR
`up` and `info` print the testbed's description as one JSON object on the last stdout line.
"""

import argparse
import json
import logging
import subprocess
import sys
from typing import List, Optional

from xscontainer.errors import XSContainerError
from xscontainer.testbed.testbed import Testbed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xscontainer-testbed", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command")
    up = commands.add_parser("up", help="bring a testbed up (replacing whatever DIR held)")
    up.add_argument("--dir", required=True)
    up.add_argument("--hosts", type=int, default=1)
    up.add_argument("--vms", type=int, default=3)
    up.add_argument("--containers", type=int, default=4)
    up.add_argument("--no-monitor", action="store_true", help="do not start the monitor per host")
    up.add_argument("--addresses-per-namespace", type=int, default=1, metavar="K",
                    help="K VMs share each namespace (one sshd, one dockerd), for large --vms")
    up.add_argument("--no-xapi", action="store_true", help=argparse.SUPPRESS)
    down = commands.add_parser("down", help="stop and remove everything the testbed in DIR started")
    down.add_argument("--dir", required=True)
    info = commands.add_parser("info", help="print the testbed's description as JSON")
    info.add_argument("--dir", required=True)
    vm_exec = commands.add_parser("vm-exec", help="run a command inside a VM's namespaces")
    vm_exec.add_argument("--dir", required=True)
    vm_exec.add_argument("vm", help="the VM's name label or uuid")
    vm_exec.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not args.command:
        parser.print_usage(sys.stderr)
        return 2
    testbed = Testbed(args.dir)
    try:
        if args.command == "up":
            info = testbed.up(hosts=args.hosts, vms=args.vms, containers=args.containers,
                              monitor=not args.no_monitor, xapi=not args.no_xapi,
                              addresses_per_namespace=args.addresses_per_namespace)
            print(json.dumps(info, sort_keys=True))
        elif args.command == "info":
            print(json.dumps(testbed.info(), sort_keys=True))
        elif args.command == "down":
            testbed.down()
        else:
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                parser.error("vm-exec needs a command after --")
            return subprocess.call(testbed.vm_exec_argv(args.vm, command))
    except XSContainerError as exc:
        print("xscontainer-testbed: %s [%s]" % (exc, exc.code), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
