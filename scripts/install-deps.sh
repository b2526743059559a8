#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Install what vhostd needs to build, run and test on Debian 12 (as root).
# Only what is missing is installed; apt is updated only then.
set -eu
pkgs="gcc libc6-dev pkg-config meson ninja-build libdpdk-dev dpdk-dev
      libnuma-dev libsystemd-dev libmnl-dev libmicrohttpd-dev python3 iproute2 ethtool util-linux clang-format libjansson-dev tcpdump ${VHD_EXTRA_PKGS:-}"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
