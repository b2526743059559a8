#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Install what is missing, build, and run vhostd in the foreground on a
# config (default: config/vhostd.conf). Ctrl-C stops it cleanly.
set -eu
cd "$(dirname "$0")/.."
conf=${1:-config/vhostd.conf}
sh scripts/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
sh scripts/hugepages.sh 512
# The default config puts its sockets here.
mkdir -p /run/vhostd
exec build/src/vhostd --config "$conf"
