#!/bin/sh
# One-time set-up on Debian 12 (or newer): the Debian packages the suite and
# the VM runner need, and a private virtualenv in .venv with the Python
# dependencies from pyproject.toml. Safe to run again.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
# chromium: tests/test_html.py reads the HTML matrix page in a real browser
need=""
for pkg in python3-venv qemu-system-x86 qemu-utils busybox-static cpio zstd kmod dpkg-dev chromium gcc python3-dev strace; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "setup: installing Debian packages:$need"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
echo "setup: ready; run the suite with: .venv/bin/pytest -n auto"
