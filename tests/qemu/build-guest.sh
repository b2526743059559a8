#!/bin/bash
# build-guest.sh CACHE_DIR [--refresh]
#
# Builds (once) a tiny test guest for the vhost-user QEMU tests:
#   CACHE_DIR/guest-<kernel-version>-<script-hash>/vmlinuz
#   CACHE_DIR/guest-<kernel-version>-<script-hash>/initramfs.cpio.gz
# and points CACHE_DIR/current at it.  On success the last two lines of stdout are
#   KERNEL=/abs/path/vmlinuz
#   INITRD=/abs/path/initramfs.cpio.gz
# (so `eval "$(tests/qemu/build-guest.sh DIR | tail -2)"` works).
#
# Kernel: Debian's linux-image-amd64 (its dependency linux-image-6.x-amd64 holds
# vmlinuz and the modules), fetched with `apt-get download` and unpacked with
# `dpkg -x` into a scratch dir: it is never installed on the host.
# Userland: busybox-static (+ ethtool and its libraries, if the host has it).
# Modules: virtio-net's, and 8021q (VLAN sub-interfaces: `ip link add link
# eth0 name eth0.10 type vlan id 10`), each with its dependencies.
#
# Idempotent: if CACHE_DIR/current is a finished build made by this same script
# (script hash matches), nothing is queried or rebuilt (runs in well under a
# second).  --refresh (or VHD_GUEST_REFRESH=1) re-resolves the current Debian
# kernel version and builds it if it is not cached yet.
#
# Guest kernel command line parameters understood by /init:
#   vhd.ip=A.B.C.D/NN   vhd.mac=52:54:00:..   vhd.mtu=9000   vhd.queues=N
#   vhd.name=NAME       vhd.ip6=ADDR/NN (optional)
# /init prints "VHD-GUEST-READY name=... ip=..." on the console when eth0 is up
# and then runs a shell on the console (echo off, empty prompt).
set -euo pipefail

usage() { echo "usage: $0 CACHE_DIR [--refresh]" >&2; exit 2; }
[ $# -ge 1 ] || usage
CACHE_DIR=$1; shift
REFRESH=${VHD_GUEST_REFRESH:-0}
for a in "$@"; do
    case "$a" in
        --refresh) REFRESH=1 ;;
        *) usage ;;
    esac
done

mkdir -p "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
SELF=$(readlink -f "$0")
SCRIPT_HASH=$(sha256sum "$SELF" | cut -c1-12)

log() { echo "build-guest: $*" >&2; }

emit() {
    echo "KERNEL=$1/vmlinuz"
    echo "INITRD=$1/initramfs.cpio.gz"
}

is_done() { [ -f "$1/.done" ] && [ -f "$1/vmlinuz" ] && [ -f "$1/initramfs.cpio.gz" ]; }

# ---- fast path -------------------------------------------------------------
if [ "$REFRESH" != 1 ] && [ -L "$CACHE_DIR/current" ]; then
    cur=$(readlink -f "$CACHE_DIR/current")
    case "$(basename "$cur")" in
        *-"$SCRIPT_HASH")
            if is_done "$cur"; then emit "$cur"; exit 0; fi ;;
    esac
fi

# ---- slow path: one builder at a time per cache dir --------------------------
exec 9>"$CACHE_DIR/.lock"
flock 9

# ---- host tools ------------------------------------------------------------
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
}
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' \
    || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v file >/dev/null || need_pkgs+=(file)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v zstd >/dev/null || need_pkgs+=(zstd)
command -v ethtool >/dev/null || need_pkgs+=(ethtool)
command -v modinfo >/dev/null || need_pkgs+=(kmod)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2; then
        apt_update_once
        apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
    fi
fi
if ! file -L /bin/busybox | grep -q 'statically linked'; then
    log "/bin/busybox is not the static busybox (busybox-static not installed?)"
    exit 1
fi

# ---- resolve the kernel ------------------------------------------------------
resolve_kpkg() {
    # prints "<binary package name> <version>" of linux-image-amd64's kernel
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends: *\(linux-image-[^ ,]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -1
}
KINFO=$(resolve_kpkg || true)
if [ -z "$KINFO" ]; then
    apt_update_once
    KINFO=$(resolve_kpkg || true)
fi
if [ -z "$KINFO" ]; then
    # Fall back to apt-cache depends (no version pin)
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: *\(linux-image-[^ ]*\).*/\1/p' | head -1)
    [ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
    KVERPKG=$(apt-cache show --no-all-versions "$KPKG" | sed -n 's/^Version: //p' | head -1)
else
    KPKG=${KINFO% *}; KVERPKG=${KINFO#* }
fi
KREL=${KPKG#linux-image-}            # e.g. 6.1.0-56-amd64
KREL=${KREL%-unsigned}
OUT="$CACHE_DIR/guest-${KREL}_${KVERPKG}-${SCRIPT_HASH}"

if is_done "$OUT"; then
    ln -sfn "$(basename "$OUT")" "$CACHE_DIR/current"
    emit "$OUT"; exit 0
fi

log "building guest for $KPKG $KVERPKG into $OUT"
WORK=$(mktemp -d "$CACHE_DIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"   # apt-get download as _apt needs to write here

( cd "$WORK" && apt-get download "$KPKG=$KVERPKG" >&2 2>/dev/null ) \
    || ( cd "$WORK" && apt-get download "$KPKG" >&2 )
DEB=$(ls "$WORK"/*.deb | head -1)
dpkg -x "$DEB" "$WORK/k"
rm -f "$DEB"
VMLINUZ=$(ls "$WORK"/k/boot/vmlinuz-* | head -1)
KDIR=$(ls -d "$WORK"/k/lib/modules/* 2>/dev/null | head -1)
[ -f "$VMLINUZ" ] && [ -d "$KDIR" ] || { log "unexpected kernel package layout"; exit 1; }
KVER=$(basename "$KDIR")

# ---- initramfs tree ------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib/modules,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$R/bin/busybox"
for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] || ln -sf busybox "$R/bin/$app"
done

# modules: the NIC's, and 8021q for VLAN sub-interfaces (ip link add ...
# type vlan), each after the modules it depends on.  The package ships no
# modules.dep (depmod runs when it is installed), so dependencies come from
# each module's own modinfo "depends" (what depmod's modules.dep lists too):
# for 8021q on 6.1 that is garp and mrp, and garp needs stp and llc.
# Compressed modules are unpacked here: busybox insmod reads plain .ko only.
MODS="failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net 8021q"
: > "$R/lib/modules/load-order"
add_mod() {    # add_mod NAME: NAME's dependencies, then NAME, to the load order
    local m=$1 f deps dep
    grep -qx "$m" "$R/lib/modules/load-order" && return 0
    # a module name's _ and - are interchangeable in its file name
    f=$(find "$KDIR" -name "${m//[_-]/[_-]}.ko" -o -name "${m//[_-]/[_-]}.ko.xz" \
             -o -name "${m//[_-]/[_-]}.ko.zst" -o -name "${m//[_-]/[_-]}.ko.gz" | head -1)
    if [ -z "$f" ]; then
        if grep -qE "/${m//[_-]/[_-]}\.ko$" "$KDIR/modules.builtin" 2>/dev/null; then
            log "module $m is built in"
        else
            log "module $m not found (assuming built in)"
        fi
        return 0
    fi
    case "$f" in
        *.ko.xz)  xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
        *.ko.gz)  gzip -dc "$f" > "$R/lib/modules/$m.ko" ;;
        *)        cp "$f" "$R/lib/modules/$m.ko" ;;
    esac
    deps=$(modinfo -F depends "$R/lib/modules/$m.ko")
    for dep in ${deps//,/ }; do
        add_mod "$dep"
    done
    echo "$m" >> "$R/lib/modules/load-order"
}
for m in $MODS; do
    add_mod "$m"
done
grep -qx 8021q "$R/lib/modules/load-order" || grep -q '/8021q\.ko$' "$KDIR/modules.builtin" \
    || { log "no 8021q module in $KVER: guests could not make VLAN sub-interfaces"; exit 1; }

# optional: ethtool (for multiqueue: ethtool -L eth0 combined N) with its libs
if command -v ethtool >/dev/null; then
    ET=$(command -v ethtool)
    cp "$ET" "$R/usr/sbin/ethtool"
    for lib in $(ldd "$ET" | grep -o '/[^ ]*'); do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
fi

echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"

cat > "$R/init" <<'INIT'
#!/bin/sh
# vhostd test guest /init (generated by tests/qemu/build-guest.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
dmesg -n 1 2>/dev/null

VHD_IP= VHD_IP6= VHD_MAC= VHD_MTU= VHD_QUEUES= VHD_NAME=guest VHD_IFACE=eth0
for kv in $(cat /proc/cmdline); do
    case "$kv" in
        vhd.ip=*)     VHD_IP=${kv#vhd.ip=} ;;
        vhd.ip6=*)    VHD_IP6=${kv#vhd.ip6=} ;;
        vhd.mac=*)    VHD_MAC=${kv#vhd.mac=} ;;
        vhd.mtu=*)    VHD_MTU=${kv#vhd.mtu=} ;;
        vhd.queues=*) VHD_QUEUES=${kv#vhd.queues=} ;;
        vhd.name=*)   VHD_NAME=${kv#vhd.name=} ;;
        vhd.iface=*)  VHD_IFACE=${kv#vhd.iface=} ;;
    esac
done
hostname "$VHD_NAME"

for m in $(cat /lib/modules/load-order); do
    insmod /lib/modules/$m.ko 2>/dev/null || echo "vhd-init: insmod $m failed"
done

i=0
while [ ! -e /sys/class/net/$VHD_IFACE ] && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i+1))
done
ip link set lo up
if [ -e /sys/class/net/$VHD_IFACE ]; then
    [ -n "$VHD_MAC" ] && ip link set "$VHD_IFACE" address "$VHD_MAC"
    [ -n "$VHD_MTU" ] && ip link set "$VHD_IFACE" mtu "$VHD_MTU"
    if [ -n "$VHD_QUEUES" ] && [ "$VHD_QUEUES" -gt 1 ] && [ -x /usr/sbin/ethtool ]; then
        ethtool -L "$VHD_IFACE" combined "$VHD_QUEUES" || echo "vhd-init: ethtool -L failed"
    fi
    ip link set "$VHD_IFACE" up
    [ -n "$VHD_IP" ] && ip addr add "$VHD_IP" dev "$VHD_IFACE"
    [ -n "$VHD_IP6" ] && ip -6 addr add "$VHD_IP6" dev "$VHD_IFACE" nodad
    echo "VHD-GUEST-READY name=$VHD_NAME iface=$VHD_IFACE ip=$VHD_IP mac=$(cat /sys/class/net/$VHD_IFACE/address) mtu=$(cat /sys/class/net/$VHD_IFACE/mtu)" > /tmp/ready
else
    echo "VHD-GUEST-NO-NIC $(ls /sys/class/net)" > /tmp/ready
fi

# command shell on the console: no echo, no prompt, own session so ^C works
while true; do
    # the marker is printed only once echo is off, so the test's first
    # command is not echoed back
    setsid cttyhack sh -c 'stty -echo 2>/dev/null; cat /tmp/ready; export PS1= PS2=; exec sh -i' 2>&1
    echo "VHD-GUEST-SHELL-EXITED"
done
INIT
chmod 755 "$R/init"

# ---- pack ----------------------------------------------------------------------
STAGE="$WORK/out"
mkdir -p "$STAGE"
cp "$VMLINUZ" "$STAGE/vmlinuz"
( cd "$R" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --owner=0:0 ) \
    | gzip -9 > "$STAGE/initramfs.cpio.gz"
echo "$KVER" > "$STAGE/kernel-release"
echo "$KPKG $KVERPKG" > "$STAGE/kernel-package"
cp "$R/lib/modules/load-order" "$STAGE/modules"
touch "$STAGE/.done"
rm -rf "$OUT"
mv "$STAGE" "$OUT"
ln -sfn "$(basename "$OUT")" "$CACHE_DIR/current"
# drop builds of other kernels / older versions of this script
for d in "$CACHE_DIR"/guest-*; do
    [ "$d" = "$OUT" ] || rm -rf "$d"
done
log "built $(du -sh "$OUT" | cut -f1) for $KVER"
emit "$OUT"
