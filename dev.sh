#!/usr/bin/env bash
# One entry point for developers and CI.
#   ./dev.sh demo    install everything, bring up the demo pool, show it
#   ./dev.sh test    install everything, run the whole suite on Python 3.11 and 3.6
#   ./dev.sh setup   install only
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

APT_PACKAGES="python3 python3-venv docker.io openssh-server openssh-client busybox-static iproute2 iptables xorriso rpm createrepo-c dnf gnupg cloud-init socat ncat procps psmisc tmux"

log() { printf '[dev.sh] %s\n' "$*" >&2; }

install_system_packages() {
  local missing=()
  for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages (need root to install): ${missing[*]}"; return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # The testbed starts its own dockerd instances; the distribution's service is not needed.
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
}

find_python() {  # $1 = version prefix, e.g. 3.11
  local root; root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for cand in "$root"/versions/"$1"*/bin/python"$1" "python$1"; do
    if command -v "$cand" >/dev/null 2>&1; then command -v "$cand"; return 0; fi
  done
  return 1
}

main_python() {  # pyenv's 3.11 when there is one, else the distribution's python3 (3.7 or later)
  find_python 3.11 && return 0
  if python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
    command -v python3; return 0
  fi
  log "no Python 3.7 or later: install Debian's python3 and python3-venv (apt-get install python3 python3-venv)"
  exit 1
}

python36() {  # dom0's interpreter; Debian has no package of it
  if [ -n "${XSCONTAINER_PYTHON36:-}" ]; then echo "$XSCONTAINER_PYTHON36"; return 0; fi
  find_python 3.6 && return 0
  log "Python 3.6 (dom0's interpreter) is not installed, and the test suite runs on it too."
  log "Debian packages neither it nor pyenv. As root:"
  log "  apt-get install git curl build-essential libssl-dev zlib1g-dev libffi-dev libbz2-dev libreadline-dev libsqlite3-dev"
  log "  git clone https://github.com/pyenv/pyenv ~/.pyenv && ~/.pyenv/bin/pyenv install 3.6.15"
  log "or point XSCONTAINER_PYTHON36 at a python3.6 binary. './dev.sh demo' does not need it."
  exit 1
}

make_venv() {  # $1 = venv dir, $2 = python, $3 = requirements suffix
  local venv=$1 py=$2 req=$3 stamp
  stamp=$(cat requirements/"$req".txt requirements/test-"$req".txt setup.cfg | sha256sum | cut -c1-16)
  if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then return 0; fi
  log "creating $venv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  if [ "$req" = py36 ]; then
    "$venv/bin/pip" install -q --disable-pip-version-check 'pip==21.3.1' 'setuptools==59.6.0' 'wheel==0.37.1'
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements/"$req".txt -r requirements/test-"$req".txt
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  echo "$stamp" > "$venv/.stamp"
}

setup_main() {
  install_system_packages
  local py; py=$(main_python)
  make_venv .venv "$py" py311
}

setup() {
  local py36; py36=$(python36)   # fail at once, before installing anything, when 3.6 is missing
  setup_main
  make_venv .venv36 "$py36" py36
}

run_tests() {
  local status=0
  for venv in .venv .venv36; do
    log "test suite on $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests || status=1
  done
  return $status
}

case "${1:-}" in
  setup) setup ;;
  test) setup; run_tests ;;
  demo) setup_main; exec .venv/bin/python -m xscontainer.demo "${@:2}" ;;
  *) echo "usage: $0 demo|test|setup" >&2; exit 2 ;;
esac
