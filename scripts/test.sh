#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Install what is missing, build (plain and ASan+UBSan), run the whole test
# suite in both builds, and end with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
# What only the tests need: the package build and its check, libvirt,
# Prometheus (promtool and a server that scrapes vhostctl metrics), FRR
# (zebra and bgpd: the EVPN peer).
VHD_EXTRA_PKGS="debhelper dpkg-dev lintian libvirt-daemon-system libvirt-clients bash-completion prometheus frr ${VHD_EXTRA_PKGS:-}" \
	sh scripts/install-deps.sh || exit 1
sh scripts/hugepages.sh 1024 || exit 1

status=0
for b in build build-asan; do
	opts=""
	[ "$b" = build-asan ] && opts="-Db_sanitize=address,undefined -Db_lundef=false -Dqemu_tests=false"
	if [ ! -d "$b" ]; then
		# shellcheck disable=SC2086
		meson setup "$b" $opts || exit 1
	fi
	# No stale results: a build that fails counts as one failure below.
	rm -f "$b/meson-logs/testlog.json"
	if ! ninja -C "$b"; then
		echo "=== $b: the build failed"
		status=1
		continue
	fi
	echo "=== meson test ($b)"
	meson test -C "$b" --print-errorlogs || status=1
done

python3 - <<'PY'
import json
passed = failed = skipped = 0
for b in ("build", "build-asan"):
    try:
        lines = open(b + "/meson-logs/testlog.json").read().splitlines()
    except OSError:
        failed += 1  # the build failed (or its tests never ran)
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print("%d passed, %d failed%s" % (passed, failed,
      ", %d skipped" % skipped if skipped else ""))
PY
exit $status
