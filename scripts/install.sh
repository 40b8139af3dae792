#!/usr/bin/env bash
# Install everything Switchboard needs on Debian 12, as root: the lab's Debian packages
# (FRR, net-snmp, lldpd, yuma123 netconfd, OpenSSH) and a virtualenv in .venv with the
# suite and its development tools. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  python3 python3-venv python3-dev gcc
  iproute2 iputils-ping util-linux procps tcpdump
  snmpd snmptrapd snmp
  frr frr-snmp
  lldpd
  openssh-server openssh-client
  netconfd netconfd-module-ietf-interfaces netconfd-module-ietf-system
  chromium
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs Debian packages; the lab needs root)" >&2
  exit 1
fi

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python3 - <<'PY' || { echo "install.sh: Python 3.11 or newer is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# reinstall only when pyproject.toml changed since the last install
stamp=.venv/.switchboard-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install.sh: installing the suite into .venv (log: .venv/install.log)"
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install -e '.[dev]'; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "install.sh: pip failed; the whole log is in .venv/install.log" >&2
    exit 1
  fi
  .venv/bin/python -c "import lab, northbound.cli"  # fail loudly if the install did not take
  echo "$want" > "$stamp"
fi
echo "install.sh: ready ($(.venv/bin/python --version), $(/usr/lib/frr/zebra --version | head -n1))"
