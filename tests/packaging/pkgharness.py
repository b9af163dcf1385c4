"""Helpers for the packaging tests: run tools, build with ``iso/build``, read its manifest."""

import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCH = 1700000000
TOOLS = ("rpmbuild", "rpm", "createrepo_c", "xorriso")


def run(argv, check=True, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (argv, proc.returncode, proc.stdout,
                                                          proc.stderr))
    return proc


def missing_tools():
    return [t for t in TOOLS if shutil.which(t) is None]


class Build(object):
    """The outputs of one ``iso/build`` run: ``path(key)`` for rpm, update_rpm, iso, legacy_iso."""

    def __init__(self, outdir):
        self.outdir = outdir
        with open(os.path.join(outdir, "build.json")) as handle:
            self.manifest = json.load(handle)

    def path(self, key):
        return os.path.join(self.outdir, self.manifest[key])


def build_into(snapshot, outdir):
    proc = run([sys.executable, os.path.join(snapshot, "iso", "build"),
                "--source-date-epoch", str(EPOCH), outdir], check=False)
    if proc.returncode != 0:
        raise AssertionError("iso/build failed:\n%s" % proc.stderr)
    return Build(outdir)


