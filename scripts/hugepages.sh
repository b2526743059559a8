#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Make sure hugetlbfs is mounted at /dev/hugepages and at least N (default
# 1024) 2 MiB hugepages are reserved.
set -eu
want=${1:-1024}
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
	echo "$want" > /proc/sys/vm/nr_hugepages
	have=$(cat /proc/sys/vm/nr_hugepages)
	[ "$have" -ge "$want" ] ||
		echo "warning: only $have of $want hugepages could be reserved" >&2
fi
