#!/usr/bin/env bash
# vhostd benchmark harness: vhost-user L2 switching throughput on a 2-core box.
#
#   scripts/bench.sh [--quick] [--rounds N] [--sizes 64,1518,imix]
#                    [--dirs both,oneway] [--only wire,ovs-normal,...]
#                    [--sequential [--reps N]]
#                    [--flows 1,16,1024,65536] [--idle-ports 0,16,64,256,1019]
#                    [--queues 1,4] [--sw-lcores 1,2]
#   scripts/bench.sh --tcp [--only vhostd-tso,vhostd-mtu,ovs-tso,ovs-mtu]
#   scripts/bench.sh --vxlan encap,decap [--sizes 64,1518]
#                    [--only wire,ovs-plain,ovs-vxlan,vhostd-plain,vhostd-vxlan]
#
# Topology: the switch under test polls on CPU 1 (--sw-cpu); one dpdk-testpmd
# generator on CPU 0 (--gen-cpu) with two net_virtio_user ports attached to
# two vhost-user ports of the switch, io forwarding; packets injected with
# `start tx_first N` circulate generator -> switch -> generator.
# Contenders:
#   wire             dpdk-testpmd, 2 x net_vhost, io forwarding (librte_vhost cost)
#   ovs-normal       OVS-DPDK (Debian), netdev bridge, NORMAL action (+ static MACs)
#   ovs-p2p          OVS-DPDK, in_port=1->2 and 2->1 OpenFlow rules
#   vhostd-learning  build/src/vhostd, [bridge] mode = learning
#   vhostd-xconnect  build/src/vhostd, [bridge] mode = xconnect
#   vhostd-vlan      build/src/vhostd, learning, both ports access ports of
#                    VLAN 10 with allowed-macs (the VLAN and port-security
#                    path; not in the default set)
#   alt-learning, alt-xconnect   the same with the build given by --vhostd-alt
#                    (A/B of two vhostd builds in one interleaved run)
# More dimensions (off by default; each value is a case of its own, every
# contender measured in it; wire gets the same traffic, no idle ports):
#   --flows LIST       the generator replays N MAC pairs per direction from
#                      pcaps (net_pcap, infinite_rx) instead of tx_first's
#                      one pair: frames A_i->B_i into p0, B_i->A_i into p1,
#                      so a learning bridge learns all 2N MACs and forwards
#                      known unicast (checked: its MAC table and floods)
#   --idle-ports LIST  the switch has N more vhost-user ports on the bridge,
#                      listening, no guest connected (vhostd: [port idleK];
#                      OVS: dpdkvhostuser ports)
#   --queues LIST      multiqueue: each generator port has N queue pairs and
#                      replays frames from pcaps on every one of them (a
#                      guest spreading its flows over all its queues)
#   --sw-lcores LIST   the switch gets K datapath lcores (CPUs: --sw-cpu,
#                      then the others; on 2 CPUs K=2 shares the generator's)
# --tcp: TCP payload throughput (Gbit/s) through the switch with guest
# offloads on and off, a mode of its own (time-sliced, other dimensions
# off): contenders vhostd-tso (ports offloads = yes), vhostd-mtu
# (offloads = no), ovs-tso (other_config:userspace-tso-enable=true),
# ovs-mtu (false), and on request wire-tso, wire-mtu (testpmd, net_vhost,
# io). The generator is vhd-tcpgen (bench/tcpgen.c), not testpmd: one TCP
# stream, port 0 -> port 1, whose frames circulate through the switch,
# 63778-byte TSO super-frames (44 x 1448 B payload, -tso contenders) or
# 1514-byte segments with complete checksums (-mtu), one ACK back per
# 64 KiB of payload; Gbit/s counts TCP payload only.
# --vxlan encap,decap: VXLAN encapsulation and decapsulation (issue 15), a
# mode of its own (time-sliced; the directions replace --dirs): generator
# port 0 is the guest (vhost-user port p0 on a learning bridge), port 1 the
# underlay: vhostd's ethdev up0 (net_vhost, its socket) under vxlan port
# vx0 (vhostd-vxlan), OVS-DPDK's br-phy port up0 (dpdkvhostuserclient)
# under br-int's vxlan port (userspace tunnel: br-phy with the local VTEP
# IP, ovs/route/add, tnl/arp/set) (ovs-vxlan); the -plain contenders put
# up0 on the guest's bridge (the same traffic without a tunnel), wire is
# testpmd between the two sockets (the generator's ceiling). encap: the
# generator replays guest frames (net_pcap, infinite_rx) into port 0 and
# counts what comes out of the underlay (VXLAN, 50 B more); decap: it
# replays VXLAN frames (-plain, wire: the inner frames) into port 1 and
# counts what reaches the guest. Frames and addresses: bench/vxlan.py.
# Time-sliced (default): per case, every contender and its own generator are
# started once, then take turns on the two CPUs (SIGSTOP/SIGCONT), one short
# window each per round, so contenders are compared seconds apart
# (bench/slices.py); that is repeated --reps times with fresh processes, so
# no contender keeps one process's luck (memory placement) all run.
# --sequential: a fresh switch and generator per measurement, contenders
# interleaved per repetition.
# See docs/BENCHMARKS.md.  Needs root, hugepages, dpdk-testpmd, python3.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ALL_CONTENDERS="wire,ovs-normal,ovs-p2p,vhostd-learning,vhostd-xconnect"
ALT_CONTENDERS="alt-learning,alt-xconnect"
EXTRA_CONTENDERS="vhostd-vlan"
# --tcp (issue 12): its own contenders, wire-* on request
TCP_CONTENDERS="vhostd-tso,vhostd-mtu,ovs-tso,ovs-mtu"
TCP_EXTRA_CONTENDERS="wire-tso,wire-mtu"
# --vxlan (issue 15): its own contenders
VX_CONTENDERS="wire,ovs-plain,ovs-vxlan,vhostd-plain,vhostd-vxlan"
VXLAN=""            # --vxlan LIST: encap and/or decap (empty: off)
DIRS_SET=0          # --dirs given (not with --vxlan)

REPS=3              # sliced: sessions per case; sequential: repetitions
SIZES=64,1518
DIRS=both,oneway
ONLY=$ALL_CONTENDERS
ONLY_SET=0
VHOSTD_ALT=""
INTERVAL=4          # s, measurement window (every level with --pick best)
PICK=best           # best: rate at the best injection level; last: at the last
WARMUP=3            # s, after the first injection
RAMP_INTERVAL=2     # s, measurement at each intermediate injection level
BURSTS=32,64,128    # cumulative tx_first bursts (of 32 packets) per port
RETRIES=2           # extra attempts for a disturbed measurement
WAIT_QUIET=120      # s, max wait for an idle machine before each measurement
QUIET_BUSY=0.10     # "idle": less than this fraction of all CPUs busy over 1 s
GEN_CPU=0
SW_CPU=1
OUT=""
VHOSTD=${VHOSTD:-$ROOT/build/src/vhostd}
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SOCKET_MEM=1024
QUICK=0
PRINT_CONF=""
GEN_DEVARGS=""
SLICED=1
ROUNDS=4            # sliced: windows per contender and session
WINDOW=2            # s, sliced: one window
SETTLE=1            # s, sliced: after a pair resumes, before its window
SFX=""              # file prefix, bridge and socket dir suffix of a contender
FLOWS=""            # --flows LIST (empty: tx_first, one MAC pair per direction)
IDLE_PORTS=""       # --idle-ports LIST (empty: none)
CUR_FLOWS=0         # the case being measured: MAC pairs per direction (0: tx_first)
CUR_IDLE=""         # the case being measured: idle ports (empty: none)
# vhost-user sockets of one DPDK 22.11 process: librte_vhost's fdset (the
# poll() set of its socket thread) has MAX_FDS = 1024 slots, one taken by
# its wake-up pipe, the others by listening and connected sockets
# together. vhostd: 2 + N listening + 2 connected + 1 <= 1024, so N <= 1019
# (at 1020 the generator's second connection fails: "failed to add fd into
# vhost server fdset"). OVS (p0, p1 clients): N + 2 + 1 <= 1024, and
# MAX_VHOST_SOCKET = 1024 sockets; vhostd's VHD_MAX_PORTS is 1024 ports.
# The same cap for both.
MAX_IDLE=1019
# vhostd builds before 2026-11-29 read at most 2048 non-empty lines from
# their config (config.c MAX_KEYS; now 32768), 5 per [port] section: idle
# ports beyond this many are added at run time (vhostctl port add, the
# same keys), so that an older --vhostd-alt build gets the same ports
VHOSTD_CONF_IDLE=400
MAX_FLOWS=131072    # the generator holds the 2N frames in its mbuf pool: 640 MB more
# --latency (bench/latgen.c; off by default, a run without it is as before)
LATENCY=""          # --latency LIST: loads in % of each contender's own capacity
LAT_SECONDS=10      # s, each latency measurement (--latency-seconds)
LAT_WARMUP=2        # s, at the measurement's rate before it, not counted (--latency-warmup)
LATGEN=${LATGEN:-$ROOT/build/scripts/bench/vhd-latgen}
# --tcp (bench/tcpgen.c, bench/tcp.py; off by default)
TCP=0
TCP_LEVELS=256,512,1024  # payload in flight, in MSS segments (ramp; see BENCHMARKS)
TCP_SEGS=44         # MSS segments per TSO super-frame (44 x 1448 = 63712 B)
TCP_ACK_BYTES=65536 # one ACK back per this much payload (0: none)
TCP_CHECK=0         # --tcp-check: tcpgen verifies every frame it receives
TCPGEN=${TCPGEN:-$ROOT/build/scripts/bench/vhd-tcpgen}
# ---- multiqueue (--queues, --sw-lcores)
QUEUES=""           # --queues LIST (empty: off, tx_first on one queue pair)
SW_LCORES=""        # --sw-lcores LIST (empty: off, one lcore on --sw-cpu)
MQ_GEN=circulate    # --mq-gen: circulate (closed loop) or replay (open loop, every queue)
CUR_Q=""            # the case being measured: queue pairs per port ("": off)
CUR_SWL=""          # the case being measured: switch datapath lcores ("": off, 1)
CUR_MQ=""           # the case being measured: "$CUR_Q$CUR_SWL" ("": neither on)
SW_CPUS=""          # the case being measured: the switch's datapath CPUs (sw_cpus)
MAX_QUEUES=16       # per port (the generator's mbufs and rings grow with it)
GEN_SHARED_MIN=0.40 # the generator's CPU share that is not "disturbed" when
                    # a switch lcore shares its CPU (seen: ~0.67 and ~0.33)
# ---- end multiqueue

usage() {
	sed -n '2,/^[^#]/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	cat <<EOF

Options:
  --quick              64B both-ways only, 2 short rounds (smoke check, <2 min)
  --sizes LIST         frame sizes without FCS, and/or 'imix' (default $SIZES)
  --dirs LIST          both (tx_first on both ports) and/or oneway (default $DIRS)
  --only LIST          contenders (default $ALL_CONTENDERS;
                       also: $EXTRA_CONTENDERS)
  --bursts LIST        cumulative injected bursts per port (default $BURSTS)
  --ramp-interval S    window at each injection level of the ramp (default $RAMP_INTERVAL)
  --warmup S           warm-up before the first ramp measurement (default $WARMUP)
  --wait-quiet S       before each case (sequential: measurement) wait up to S s
                       for the machine to be idle (<${QUIET_BUSY} busy), then go anyway
                       (default $WAIT_QUIET)
  --gen-cpu N / --sw-cpu N   CPUs of generator / switch (default $GEN_CPU / $SW_CPU)
  --vhostd PATH        vhostd binary (default build/src/vhostd)
  --vhostd-alt PATH    a second vhostd build, measured as alt-learning and
                       alt-xconnect (added to the default contenders)
  --out DIR            keep logs and results here (default /tmp/vhostd-bench.<time>)
  --gen-devargs S      appended to the generator's net_virtio_user devargs,
                       e.g. ',packed_vq=1' (default: none, split rings)
  --flows LIST         MAC pairs per direction, one case each (e.g.
                       1,16,1024,65536; at most $MAX_FLOWS): replayed from
                       pcaps, both ways only, numeric sizes only; both
                       switches' MAC tables sized for them (default: off,
                       tx_first's one pair)
  --idle-ports LIST    idle vhost-user ports on the bridge, one case each
                       (e.g. 0,16,64,256,1019; at most $MAX_IDLE; default:
                       off, none)
  --queues LIST        queue pairs per generator port, one case each (e.g.
                       1,4; at most $MAX_QUEUES); default: off, one pair
  --mq-gen circulate|replay   --queues: circulate tx_first's packets,
                       injected on every queue (default; closed loop, io
                       forwarding keeps a packet's queue: after one pass
                       only the queues the switch sends on, one per switch
                       lcore, carry traffic), or replay pcaps on every queue
                       (open loop, overloads the switch's egress; both ways
                       and numeric sizes only)
  --sw-lcores LIST     datapath lcores of the switch, one case each (e.g.
                       1,2): vhostd lcores, OVS pmd-cpu-mask, wire's
                       forwarding lcores; CPUs --sw-cpu first, then the
                       others, the generator's last (default: off, one)
  --print-vhostd-config MODE   print the vhostd INI used for MODE and exit
 Time-sliced (default):
  --reps N             sessions per case, each with fresh processes (default $REPS)
  --rounds N           windows per contender and session (default $ROUNDS); the
                       ramp runs once per contender at its start, the windows at
                       the last level
  --window S           one window (default $WINDOW)
  --settle S           after a pair resumes, before its window (default $SETTLE)
 --sequential:
  --reps N             repetitions per contender and case (default $REPS)
  --interval S         measurement window at each injection level (default $INTERVAL)
  --pick best|last     report the rate at the injection level where the switch
                       does best (default), or at the last level (then the
                       earlier levels get --ramp-interval windows)
  --retries N          re-runs of a disturbed measurement (default $RETRIES)
 --tcp:                TCP payload throughput, offloads on and off (issue 12):
                       contenders $TCP_CONTENDERS
                       (default), also $TCP_EXTRA_CONTENDERS; time-sliced
                       (--reps, --rounds, --window, --settle, --warmup,
                       --ramp-interval, --only, --wait-quiet, --quick apply;
                       --sizes, --dirs, --bursts do not; not with --flows,
                       --idle-ports, --queues, --sw-lcores, --latency,
                       --sequential; with --vhostd-alt also alt-tso,
                       alt-mtu: the other build)
  --tcp-levels LIST    payload in flight, in MSS (1448 B) segments, one ramp
                       step each (default $TCP_LEVELS)
  --tcp-segs N         segments per TSO super-frame (default $TCP_SEGS)
  --tcp-ack-bytes N    one ACK per N bytes of payload received, 0: none
                       (default $TCP_ACK_BYTES)
  --tcp-check          tcpgen verifies every frame it receives (checksums,
                       lengths): a functional run, not a measurement
  --tcpgen PATH        vhd-tcpgen binary (default build/scripts/bench/vhd-tcpgen)
 --vxlan LIST:         VXLAN encapsulation and/or decapsulation throughput
                       (encap,decap; issue 15): contenders $VX_CONTENDERS
                       (default; with --vhostd-alt also alt-plain,
                       alt-vxlan); time-sliced; --sizes (numeric, default
                       64,1518), --reps, --rounds, --window, --settle,
                       --warmup, --only, --wait-quiet, --quick apply; not
                       with --dirs, --flows, --idle-ports, --queues,
                       --sw-lcores, --latency, --tcp, --sequential
 --latency LOADS:      one-way latency p0 -> p1 instead of throughput, e.g.
                       --latency 10,50,90: per contender, size and rep a fresh
                       switch and vhd-latgen (bench/latgen.c) on the generator
                       CPU, which measures the contender's capacity, then
                       p50/p99 at each load (% of that capacity); --reps,
                       --sizes (numeric), --only, --wait-quiet apply
  --latency-seconds S  each measurement (default $LAT_SECONDS)
  --latency-warmup S   at the measurement's rate before it, not counted
                       (default $LAT_WARMUP)
  --latgen PATH        vhd-latgen binary (default build/scripts/bench/vhd-latgen)
EOF
}

die() { echo "bench: $*" >&2; exit 2; }
log() { echo "[bench $(date +%T)] $*" >&2; }

# --quick sets the defaults; explicit options override them wherever they stand
for arg in "$@"; do
	if [ "$arg" = --quick ]; then
		QUICK=1 REPS=1 SIZES=64 DIRS=both INTERVAL=2 WARMUP=1 RAMP_INTERVAL=1
		RETRIES=0 WAIT_QUIET=5 ROUNDS=2 WINDOW=1 SETTLE=0.5
	fi
done
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ;;
	--reps) REPS=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--dirs) DIRS=$2; DIRS_SET=1; shift ;;
	--only) ONLY=$2; ONLY_SET=1; shift ;;
	--interval) INTERVAL=$2; shift ;;
	--ramp-interval) RAMP_INTERVAL=$2; shift ;;
	--pick) PICK=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--bursts) BURSTS=$2; shift ;;
	--retries) RETRIES=$2; shift ;;
	--wait-quiet) WAIT_QUIET=$2; shift ;;
	--gen-cpu) GEN_CPU=$2; shift ;;
	--sw-cpu) SW_CPU=$2; shift ;;
	--vhostd) VHOSTD=$2; shift ;;
	--vhostd-alt) VHOSTD_ALT=$2; shift ;;
	--out) OUT=$2; shift ;;
	--print-vhostd-config) PRINT_CONF=$2; shift ;;
	--gen-devargs) GEN_DEVARGS=$2; shift ;;
	--flows) FLOWS=$2; shift ;;
	--idle-ports) IDLE_PORTS=$2; shift ;;
	--queues) QUEUES=$2; shift ;;
	--sw-lcores) SW_LCORES=$2; shift ;;
	--mq-gen) MQ_GEN=$2; shift ;;
	--sliced) SLICED=1 ;;
	--sequential) SLICED=0 ;;
	--rounds) ROUNDS=$2; shift ;;
	--window) WINDOW=$2; shift ;;
	--settle) SETTLE=$2; shift ;;
	--latency) LATENCY=$2; shift ;;
	--latency-seconds) LAT_SECONDS=$2; shift ;;
	--latency-warmup) LAT_WARMUP=$2; shift ;;
	--latgen) LATGEN=$2; shift ;;
	--tcp) TCP=1 ;;
	--tcp-levels) TCP_LEVELS=$2; shift ;;
	--tcp-segs) TCP_SEGS=$2; shift ;;
	--tcp-ack-bytes) TCP_ACK_BYTES=$2; shift ;;
	--tcp-check) TCP_CHECK=1 ;;
	--tcpgen) TCPGEN=$2; shift ;;
	--vxlan) VXLAN=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
	shift
done

# ---------------------------------------------------------------- multiqueue
# sw_cpus K: the switch's K datapath CPUs, comma-separated: --sw-cpu, then
# the other online CPUs in order, the generator's (--gen-cpu) last, so the
# generator shares its CPU only when nothing else is left (2 CPUs, K=2)
sw_cpus() {
	local k=${1:-1} list=$SW_CPU c n
	n=$(getconf _NPROCESSORS_ONLN)
	for ((c = 0; c < n && k > 1; c++)); do
		[ "$c" = "$SW_CPU" ] || [ "$c" = "$GEN_CPU" ] && continue
		list+=",$c" k=$((k - 1))
	done
	[ $k -gt 1 ] && [ "$GEN_CPU" != "$SW_CPU" ] && list+=",$GEN_CPU"
	echo "$list"
}
SW_CPUS=$SW_CPU
# ---- end multiqueue

# ---------------------------------------------------------------- vhostd conf
# MAC table of both switches for CUR_FLOWS pairs: 2N MACs (A_i on p0, B_i
# on p1) rounded up to a power of two, at least vhostd's default 8192. A
# smaller table would evict (OVS, default 2048) or stop learning (vhostd,
# learn_table_full) and turn known unicast into floods; both switches get
# the same size.
mac_table_size() {
	local n=8192
	while [ $n -lt $((2 * CUR_FLOWS + 2)) ]; do n=$((n * 2)); done
	echo $n
}

# vhostd_config MODE SOCK0 SOCK1 [CONTROL]: the INI for one bridge with two
# vhost-user server ports (vhostd listens, the generator's virtio_user
# connects); with CONTROL, the control socket's key (builds from before the
# control socket refuse it: --vhostd-alt). --flows: the bridge's
# mac-table-size and mac-aging; --idle-ports: CUR_IDLE more server ports
# (at most VHOSTD_CONF_IDLE here), sockets beside SOCK0. MODE tso / mtu
# (--tcp): a learning bridge whose ports have offloads = yes / no (unless
# VHD_OL_KEY=0: builds from before issue 12 refuse the key, and have no
# offloads).
vhostd_config() { # $1 learning|xconnect|vlan|tso|mtu|vxlan|plain, $2 $3 sockets, $4 control?
	local mode=$1 port_extra="" br_extra="" i sizes=$SIZES
	if [ "$mode" = vxlan ] || [ "$mode" = plain ]; then
		vhostd_vx_config "$@"
		return
	fi
	[ "$CUR_FLOWS" -gt 0 ] && br_extra="; --flows $CUR_FLOWS: room for all 2N MACs (bench.sh mac_table_size)
mac-table-size = $(mac_table_size)
; and no aging while stopped between windows (the clock runs on)
mac-aging = 3600"
	if [ "$mode" = vlan ]; then
		mode=learning
		port_extra="tag = 10
allowed-macs = 00:00:00:00:00:01,00:00:00:00:00:02"
	fi
	# --tcp: guest offloads on (tso) or off (mtu), the same bridge
	if [ "$mode" = tso ] || [ "$mode" = mtu ]; then
		sizes="" # MSS 1448: 1514-byte frames at most
		[ "${VHD_OL_KEY:-1}" = 1 ] && port_extra="; --tcp: guest offloads $([ "$mode" = tso ] && echo on || echo off)
offloads = $([ "$mode" = tso ] && echo yes || echo no)"
		mode=learning
	fi
	# Frames longer than 1514 B (the 1518 of --sizes, imix's largest) are
	# over MTU 1500 untagged: vhostd drops them (drop_mtu) unless the MTU
	# is raised, while OVS-DPDK takes up to MTU + 18 B (its max_packet_len
	# counts the CRC) and wire has no limit. Same frames through all.
	local s big=0
	for s in ${sizes//,/ }; do
		[ "$s" = imix ] && s=1518
		[ "$s" -gt 1514 ] && [ "$s" -gt "$big" ] && big=$s
	done
	[ "$big" -gt 0 ] && port_extra="${port_extra:+$port_extra
}; frames of $big B: MTU 1500 takes 1514 untagged
mtu = $((big - 14))"
	cat <<EOF
; generated by scripts/bench.sh
[vhostd]
; CPU list for the datapath
lcores = $SW_CPUS
; CPU for the control thread
main-lcore = $GEN_CPU
; MiB of hugepage memory
socket-mem = 256
file-prefix = vhdbench$SFX
${4:+; control socket beside the port sockets (each contender its own)
control = $(dirname "$2")/vhostd.ctl}

[bridge br0]
mode = $mode
${br_extra:+$br_extra
}
[port p0]
type = vhost-user
path = $2
mode = server
bridge = br0
$port_extra

[port p1]
type = vhost-user
path = $3
mode = server
bridge = br0
$port_extra
EOF
	# idle ports: listening, no guest ever connects (the rest at run time:
	# vhostd_idle_ports)
	for ((i = 0; i < ${CUR_IDLE:-0} && i < VHOSTD_CONF_IDLE; i++)); do
		printf '\n[port idle%d]\ntype = vhost-user\npath = %s/idle%d.sock\nmode = server\nbridge = br0\n' \
			$i "$(dirname "$2")" $i
	done
}
# --vxlan: the guest's port p0 (SOCK0) and the underlay up0, an ethdev
# net_vhost whose socket is SOCK1 (the generator's port 1 connects):
# vxlan: up0 without a bridge under vx0 (VNI, VTEPs and the remote's MAC
# as next-hop-mac, no ARP: bench/vxlan.py); plain: up0 on br0 (the same
# frames, no tunnel). MTUs: the inner frames' (1504 for 1518 B, as the
# plain bench), the underlay 50 more with a tunnel.
vx_inner_mtu() {
	local s big=1514
	for s in ${SIZES//,/ }; do [ "$s" -gt "$big" ] && big=$s; done
	echo $((big - 14))
}
vhostd_vx_config() { # $1 vxlan|plain, $2 $3 sockets, $4 control?
	local mtu umtu
	mtu=$(vx_inner_mtu)
	umtu=$mtu
	[ "$1" = vxlan ] && umtu=$((mtu + 50))
	cat <<EOF
; generated by scripts/bench.sh --vxlan ($1)
[vhostd]
lcores = $SW_CPUS
main-lcore = $GEN_CPU
socket-mem = 256
file-prefix = vhdbench$SFX
${4:+control = $(dirname "$2")/vhostd.ctl}

[bridge br0]
mode = learning
; the remote's MAC is learned once (the generator sends it at start):
; no aging while the pair is stopped between windows
mac-aging = 3600

[port p0]
type = vhost-user
path = $2
mode = server
bridge = br0
mtu = $mtu

[port up0]
type = ethdev
devargs = net_vhost0,iface=$3
mtu = $umtu
EOF
	if [ "$1" = vxlan ]; then
		cat <<EOF

[port vx0]
type = vxlan
bridge = br0
vni = $VX_VNI
local-ip = $VX_LOCAL_IP
underlay = up0
remote = $VX_REMOTE_IP
next-hop-mac = $VX_VTEP_MAC
EOF
	else
		echo "bridge = br0"
	fi
}
# the addresses of bench/vxlan.py
eval "$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import vxlan
for k in ("VNI", "LOCAL_IP", "REMOTE_IP", "VTEP_MAC", "SW_MAC", "GUEST_MAC", "REMOTE_MAC"):
    print(f"VX_{k}={getattr(vxlan, k)}")' "$HERE/bench")"

if [ -n "$PRINT_CONF" ]; then
	CUR_FLOWS=${FLOWS%%,*} CUR_IDLE=${IDLE_PORTS%%,*}
	CUR_FLOWS=${CUR_FLOWS:-0}
	SW_CPUS=$(sw_cpus "${SW_LCORES%%,*}")
	vhostd_config "$PRINT_CONF" /tmp/vhbench.X/p0.sock /tmp/vhbench.X/p1.sock 1
	exit 0
fi

# ---------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || die "must run as root (hugepages, vhost-user, OVS)"
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (apt-get install dpdk)"
command -v python3 >/dev/null || die "python3 not found"
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"
# --tcp: its own contenders and one case; the other modes' options off
if [ "$TCP" = 1 ]; then
	[ -z "$FLOWS$IDLE_PORTS$QUEUES$SW_LCORES$LATENCY" ] ||
		die "--tcp: not with --flows, --idle-ports, --queues, --sw-lcores or --latency"
	[ $SLICED = 1 ] || die "--tcp: time-sliced only (not with --sequential)"
	[ -x "$TCPGEN" ] || die "--tcp: no vhd-tcpgen at $TCPGEN (meson setup build && ninja -C build, or --tcpgen PATH)"
	[[ $TCP_LEVELS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "bad --tcp-levels $TCP_LEVELS"
	[[ $TCP_SEGS =~ ^[0-9]+$ && $TCP_SEGS -ge 2 && $TCP_SEGS -le 45 ]] ||
		die "bad --tcp-segs $TCP_SEGS (2..45: a super-frame fits a 64 KiB buffer)"
	[[ $TCP_ACK_BYTES =~ ^[0-9]+$ ]] || die "bad --tcp-ack-bytes $TCP_ACK_BYTES"
	ALL_CONTENDERS=$TCP_CONTENDERS EXTRA_CONTENDERS=$TCP_EXTRA_CONTENDERS
	ALT_CONTENDERS="alt-tso,alt-mtu" # --vhostd-alt: the other build, A/B
	[ $ONLY_SET = 1 ] || ONLY=$TCP_CONTENDERS
	SIZES=64 DIRS=both # checked below, then the one case: tcp, oneway
elif [ "$TCP_CHECK" = 1 ]; then
	die "--tcp-check: with --tcp only"
fi
# --vxlan: its own contenders, the directions instead of --dirs
if [ -n "$VXLAN" ]; then
	[ "$TCP" = 0 ] && [ -z "$FLOWS$IDLE_PORTS$QUEUES$SW_LCORES$LATENCY" ] ||
		die "--vxlan: not with --tcp, --flows, --idle-ports, --queues, --sw-lcores or --latency"
	[ $SLICED = 1 ] || die "--vxlan: time-sliced only (not with --sequential)"
	[ $DIRS_SET = 0 ] || die "--vxlan: its directions replace --dirs"
	for d in ${VXLAN//,/ }; do
		[[ $d = encap || $d = decap ]] || die "bad --vxlan direction $d (encap, decap)"
	done
	ALL_CONTENDERS=$VX_CONTENDERS EXTRA_CONTENDERS=""
	ALT_CONTENDERS="alt-plain,alt-vxlan"
	[ $ONLY_SET = 1 ] || ONLY=$VX_CONTENDERS
	for s in ${SIZES//,/ }; do
		[[ $s =~ ^[0-9]+$ ]] || die "--vxlan: numeric --sizes only"
	done
	DIRS=both # checked below, then the directions
fi
if [ -n "$VHOSTD_ALT" ]; then
	[ -x "$VHOSTD_ALT" ] || die "--vhostd-alt: no executable at $VHOSTD_ALT"
	ALL_CONTENDERS="$ALL_CONTENDERS,$ALT_CONTENDERS"
	[ $ONLY_SET = 1 ] || ONLY=$ALL_CONTENDERS
fi
IFS=, read -ra CONTENDERS <<<"$ONLY"
IFS=, read -ra SIZE_L <<<"$SIZES"
IFS=, read -ra DIR_L <<<"$DIRS"
for c in "${CONTENDERS[@]}"; do
	case ",$ALL_CONTENDERS,$EXTRA_CONTENDERS," in *",$c,"*) ;; *) die "unknown contender $c" ;; esac
done
for s in "${SIZE_L[@]}"; do
	[[ $s = imix || ( $s =~ ^[0-9]+$ && $s -ge 60 && $s -le 1518 ) ]] ||
		die "bad size $s (60..1518 or imix)"
done
for d in "${DIR_L[@]}"; do
	[[ $d = both || $d = oneway ]] || die "bad dir $d"
done
# --tcp: one case, "size" tcp, one stream port 0 -> port 1 (and its ACKs)
[ "$TCP" = 1 ] && SIZES=tcp DIRS=oneway SIZE_L=(tcp) DIR_L=(oneway)
[ -n "$VXLAN" ] && DIRS=$VXLAN && IFS=, read -ra DIR_L <<<"$VXLAN"
[[ $PICK = best || $PICK = last ]] || die "bad --pick $PICK (best or last)"
# the new dimensions: one case per value; "" = off (the one default case)
FLOWS_L=("") IDLE_L=("")
if [ -n "$FLOWS" ]; then
	IFS=, read -ra FLOWS_L <<<"$FLOWS"
	for f in "${FLOWS_L[@]}"; do
		[[ $f =~ ^[0-9]+$ && $f -ge 1 && $f -le $MAX_FLOWS ]] ||
			die "bad --flows value $f (1..$MAX_FLOWS)"
	done
	for s in "${SIZE_L[@]}"; do
		[ "$s" != imix ] || die "--flows: numeric --sizes only (one frame size per pcap)"
	done
	# a learning bridge learns B_i only from frames B_i sends: one-way
	# traffic to B_i would be flooded
	[[ " ${DIR_L[*]} " = *" both "* ]] || die "--flows: needs --dirs both"
	[ ${#DIR_L[@]} = 1 ] || log "--flows: both ways only (one-way frames to unlearned B_i are floods)"
	DIR_L=(both) DIRS=both
	[[ ",$ONLY," = *",vhostd-vlan,"* ]] &&
		die "--flows: vhostd-vlan drops the replayed MACs (allowed-macs)"
fi
if [ -n "$IDLE_PORTS" ]; then
	IFS=, read -ra IDLE_L <<<"$IDLE_PORTS"
	for n in "${!IDLE_L[@]}"; do
		[[ ${IDLE_L[$n]} =~ ^[0-9]+$ ]] || die "bad --idle-ports value ${IDLE_L[$n]}"
		if [ "${IDLE_L[$n]}" -gt $MAX_IDLE ]; then
			log "--idle-ports ${IDLE_L[$n]}: capped at $MAX_IDLE (DPDK 22.11 librte_vhost polls at most 1024 fds: listening and connected sockets and its pipe; see MAX_IDLE)"
			IDLE_L[$n]=$MAX_IDLE
		fi
	done
	# one socket each, plus vhostd's and OVS's own fds
	[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 || die "cannot raise the fd limit to 4096"
fi
# ---- multiqueue: --queues / --sw-lcores, one case per value ("" = off)
Q_L=("") SWL_L=("")
if [ -n "$QUEUES" ]; then
	IFS=, read -ra Q_L <<<"$QUEUES"
	for q in "${Q_L[@]}"; do
		[[ $q =~ ^[0-9]+$ && $q -ge 1 && $q -le $MAX_QUEUES ]] ||
			die "bad --queues value $q (1..$MAX_QUEUES)"
	done
	[[ $MQ_GEN = replay || $MQ_GEN = circulate ]] || die "bad --mq-gen $MQ_GEN (replay or circulate)"
	if [ "$MQ_GEN" = replay ]; then
		for s in "${SIZE_L[@]}"; do
			[ "$s" != imix ] || die "--queues: numeric --sizes only (one frame size per pcap)"
		done
		# replayed frames into both ports (as --flows)
		[[ " ${DIR_L[*]} " = *" both "* ]] || die "--queues: needs --dirs both"
		[ ${#DIR_L[@]} = 1 ] || log "--queues: both ways only (the generator replays frames into both ports)"
		DIR_L=(both) DIRS=both
	fi
fi
if [ -n "$SW_LCORES" ]; then
	IFS=, read -ra SWL_L <<<"$SW_LCORES"
	for k in "${SWL_L[@]}"; do
		[[ $k =~ ^[0-9]+$ && $k -ge 1 && $k -le $(getconf _NPROCESSORS_ONLN) ]] ||
			die "bad --sw-lcores value $k (1..$(getconf _NPROCESSORS_ONLN), the online CPUs)"
	done
fi
# ---- end multiqueue

# --latency: its own path (lat_main), one-way, sequential
if [ -n "$LATENCY" ]; then
	IFS=, read -ra LAT_L <<<"$LATENCY"
	for l in "${LAT_L[@]}"; do
		[[ $l =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v l="$l" 'BEGIN {exit !(l > 0 && l <= 100)}' ||
			die "bad --latency load $l (percent of capacity, 0 < L <= 100)"
	done
	for s in "${SIZE_L[@]}"; do
		[ "$s" != imix ] || die "--latency: numeric --sizes only"
	done
	[[ $LAT_SECONDS =~ ^[0-9]+([.][0-9]+)?$ && $LAT_WARMUP =~ ^[0-9]+([.][0-9]+)?$ ]] ||
		die "bad --latency-seconds / --latency-warmup"
	[ -z "$FLOWS$IDLE_PORTS$QUEUES$SW_LCORES" ] || die "--latency: not with --flows, --idle-ports, --queues or --sw-lcores"
	[ -x "$LATGEN" ] || die "--latency: no vhd-latgen at $LATGEN (meson setup build && ninja -C build, or --latgen PATH)"
	SLICED=0 # one switch at a time: the sequential hugepage budget
fi

exec 9>/tmp/vhostd-bench.lock
flock -n 9 || die "another scripts/bench.sh is running (/tmp/vhostd-bench.lock)"

PREFIXES="vhbgen vhbwire vhbovs vhdbench vhblat"
WORK=$(mktemp -d /tmp/vhbench.XXXXXX)
[ -n "$OUT" ] || OUT=/tmp/vhostd-bench.$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
SOCK0=$WORK/p0.sock
SOCK1=$WORK/p1.sock
SW_PID=""
GEN_PIDFILE=$WORK/gen.pid
OVS_DIR=$WORK/ovs
OVS_UP=0
SUMMARY_DONE=0
CYC_NOTE=""

# ---------------------------------------------------------------- cleanup
stop_pid() { # stop_pid PID [seconds]: TERM, wait, KILL (only our own PIDs)
	local pid=$1 t=${2:-10} i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -CONT "$pid" 2>/dev/null # --sliced may have stopped it
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "pid $pid ignored SIGTERM for ${t}s, killing"
	kill -KILL "$pid" 2>/dev/null
	sleep 0.2
}

clean_huge() {
	local p
	for p in $PREFIXES; do
		rm -f /dev/hugepages/${p}*map_* 2>/dev/null
		rm -rf /var/run/dpdk/$p* 2>/dev/null
	done
}

stop_switch() {
	if [ $OVS_UP = 1 ]; then ovs_stop; fi
	stop_pid "$SW_PID" 10
	SW_PID=""
	rm -f "$SOCK0" "$SOCK1"
	clean_huge
}

# Contender k of a --sliced case lives in $WORK/s$k, its file prefixes and
# OVS network namespace suffixed k.
slot() { # slot K
	SFX=$1
	mkdir -p "$WORK/s$1"
	SOCK0=$WORK/s$1/p0.sock SOCK1=$WORK/s$1/p1.sock OVS_DIR=$WORK/s$1/ovs
}

SLOT_LABELS=() SLOT_PIDS=() SLOT_LOGS=()
stop_slots() {
	local k
	for k in "${!SLOT_PIDS[@]}"; do
		slot "$k"
		[ -s "$WORK/s$k/gen.pid" ] && stop_pid "$(cat "$WORK/s$k/gen.pid")" 5
		SW_PID=${SLOT_PIDS[$k]} SLOG=${SLOT_LOGS[$k]}
		OVS_UP=0
		[[ ${SLOT_LABELS[$k]} = ovs-* ]] && OVS_UP=1
		stop_switch
	done
	SLOT_LABELS=() SLOT_PIDS=() SLOT_LOGS=()
}

# Processing cycles per packet (bench/proc_cycles.py), read from a running
# vhostd or OVS; testpmd (wire) prints its own when it exits.
proc_cycles_live() { # $1 contender
	case $1 in
	vhostd-* | alt-*) python3 "$HERE/bench/proc_cycles.py" vhostd "vhdbench$SFX" ;;
	ovs-*) APPCTL dpif-netdev/pmd-stats-show 2>/dev/null |
		python3 "$HERE/bench/proc_cycles.py" ovs ;;
	esac
}

summarize() { # $1: note for the header
	[ $SUMMARY_DONE = 0 ] || return 0
	SUMMARY_DONE=1
	t_end=$(date +%s)
	{
		echo "# vhostd bench $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname), $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //')${1:+ ($1)}"
		echo "# switch CPU $SW_CPU, generator CPU $GEN_CPU; $CYC_NOTE"
		# ---- multiqueue
		for k in "${SWL_L[@]}"; do
			[ -n "$k" ] || continue
			echo "# --sw-lcores $k: switch CPUs $(sw_cpus "$k")$([[ ,$(sw_cpus "$k"), = *",$GEN_CPU,"* ]] && echo ", CPU $GEN_CPU shared with the generator (bound by it)")"
		done
		[ -n "$QUEUES" ] && echo "# --queues $QUEUES: queue pairs per generator port, $([ "$MQ_GEN" = replay ] && echo "pcap frames replayed on every queue (open loop)" || echo "tx_first on every queue, circulating (--mq-gen circulate)")"
		# ---- end multiqueue
		echo "# vhostd $VHOSTD (tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))${VHOSTD_ALT:+; alt $VHOSTD_ALT}"
		if [ "$TCP" = 1 ]; then
			echo "# --tcp: vhd-tcpgen, one TCP stream p0 -> p1, MSS 1448, super-frames of $TCP_SEGS segments (-tso), an ACK per $TCP_ACK_BYTES B of payload; sliced: $REPS sessions x $ROUNDS rounds of one ${WINDOW}s window per contender after ${SETTLE}s, at the last of payload levels $TCP_LEVELS segments in flight${GEN_DEVARGS:+, generator devargs $GEN_DEVARGS}; wall time $((t_end - t_start))s"
		elif [ -n "$VXLAN" ]; then
			echo "# --vxlan $VXLAN: sliced, $REPS sessions x $ROUNDS rounds of one ${WINDOW}s window per contender after ${SETTLE}s, sizes $SIZES (inner frames), pcap replay (open loop)${GEN_DEVARGS:+, generator devargs $GEN_DEVARGS}; wall time $((t_end - t_start))s"
		elif [ $SLICED = 1 ]; then
			echo "# sliced: $REPS sessions x $ROUNDS rounds of one ${WINDOW}s window per contender after ${SETTLE}s, at the last of bursts $BURSTS, sizes $SIZES, dirs $DIRS${GEN_DEVARGS:+, generator devargs $GEN_DEVARGS}${FLOWS:+, flows $FLOWS (pcap replay)}${IDLE_PORTS:+, idle ports ${IDLE_L[*]}}; wall time $((t_end - t_start))s"
		else
			echo "# reps $REPS, sizes $SIZES, dirs $DIRS, bursts $BURSTS, interval ${INTERVAL}s, pick $PICK${GEN_DEVARGS:+, generator devargs $GEN_DEVARGS}${FLOWS:+, flows $FLOWS (pcap replay)}${IDLE_PORTS:+, idle ports ${IDLE_L[*]}}; wall time $((t_end - t_start))s"
		fi
		echo
		if [ "$TCP" = 1 ]; then
			python3 "$HERE/bench/tcpreport.py" "$RESULTS"
		elif [ -n "$VXLAN" ]; then
			python3 "$HERE/bench/vxreport.py" "$RESULTS"
		else
			python3 "$HERE/bench/report.py" "$RESULTS"
		fi
	} | tee "$OUT/summary.txt"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -s "$GEN_PIDFILE" ]; then stop_pid "$(cat "$GEN_PIDFILE")" 5; fi
	stop_switch
	stop_slots
	rm -rf "$WORK"
	# --tcp: the generators' shared counters (bench/tcp.py removes its own;
	# these are a killed run's: one bench at a time, so ours)
	rm -f /dev/shm/vhbtcp-* 2>/dev/null
	if [ $rc != 0 ] && [ -s "$RESULTS" ] && [ -n "${t_start:-}" ]; then
		summarize "partial: interrupted"
	fi
	[ $rc = 0 ] || log "exit status $rc; logs in $OUT"
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- hugepages
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages || die "cannot mount hugetlbfs"
# --sliced: every contender and its generator at once (~2800 pages for all)
need_hp=$((SLICED ? 4096 : 2048))
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt $need_hp ]; then
	echo $need_hp >/proc/sys/vm/nr_hugepages
fi
clean_huge
free_hp=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "$free_hp" -ge 1200 ] || log "WARNING: only $free_hp free 2M hugepages (OVS needs ~600, generator ~300)"

# ---------------------------------------------------------------- OVS install
need_ovs=0
for c in "${CONTENDERS[@]}"; do [[ $c = ovs-* ]] && need_ovs=1; done
if [ $need_ovs = 1 ] && [ ! -x "$OVS_VSWITCHD" ]; then
	log "installing openvswitch-switch-dpdk (Debian)"
	made_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		# keep the package's init script from starting a system OVS
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch-dpdk \
		>"$OUT/apt.log" 2>&1 ||
		{ apt-get update -q >>"$OUT/apt.log" 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			openvswitch-switch-dpdk >>"$OUT/apt.log" 2>&1; }
	[ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
	[ -x "$OVS_VSWITCHD" ] || die "OVS-DPDK install failed, see $OUT/apt.log"
fi

# ---------------------------------------------------------------- cycles
CPU_MHZ=$(awk -F: -v c="$SW_CPU" '/^processor/ {p=$2+0} /^cpu MHz/ && p==c {print $2+0; exit}' /proc/cpuinfo)
[ -n "$CPU_MHZ" ] || CPU_MHZ=$(awk -F: '/^cpu MHz/ {print $2+0; exit}' /proc/cpuinfo)
if perf stat -x, -e cycles -C "$SW_CPU" -- sleep 0.1 2>&1 | grep -q '^[0-9]*,'; then
	CYC_NOTE="cycles/pkt from perf stat -e cycles -C $SW_CPU"
else
	CYC_NOTE="perf cycles counter unavailable here: cycles/pkt = ${CPU_MHZ} MHz x CPU time of the switch's busiest thread / packets"
fi

# ---------------------------------------------------------------- switches
wait_sockets() { # wait until both vhost-user sockets exist and SW_PID lives
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SW_PID" 2>/dev/null || return 1
		[ -S "$SOCK0" ] && [ -S "$SOCK1" ] && return 0
		sleep 0.1
	done
	return 1
}

start_wire() { # $1 log, $2 more net_vhost devargs (--tcp wire-tso)
	# ---- multiqueue: a forwarding lcore per switch CPU, N queues a port
	# (testpmd spreads its 2N streams over the lcores; it prints per-stream
	# counters when it exits)
	local lc="0@$GEN_CPU" nb=0 c vq="${2:-}" mq=()
	for c in ${SW_CPUS//,/ }; do nb=$((nb + 1)) lc+=",$nb@$c"; done
	[ -n "$CUR_Q" ] && vq+=",queues=$CUR_Q" mq=(--rxq="$CUR_Q" --txq="$CUR_Q")
	# ---- end multiqueue
	setsid taskset -c "$GEN_CPU,$SW_CPUS" stdbuf -oL dpdk-testpmd \
		--lcores "$lc" --file-prefix "vhbwire$SFX" --in-memory \
		--no-pci --no-telemetry -m 512 \
		--vdev "net_vhost0,iface=$SOCK0$vq" --vdev "net_vhost1,iface=$SOCK1$vq" \
		-- --nb-cores=$nb --forward-mode=io --stats-period 3600 "${mq[@]}" \
		--rxd=1024 --txd=1024 --record-core-cycles </dev/null >>"$1" 2>&1 &
	SW_PID=$!
	wait_sockets
}

VSCTL() { ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=60 "$@"; }
APPCTL() { ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" "$@"; }

ovs_stop() {
	local p
	[ -f "$OVS_DIR/ovs-vswitchd.log" ] && [ -n "${SLOG:-}" ] &&
		cp "$OVS_DIR/ovs-vswitchd.log" "${SLOG%.switch.log}.ovs-vswitchd.log"
	if [ -S "$OVS_DIR/ovs-vswitchd.ctl" ]; then
		timeout 15 ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1
	fi
	for p in ovs-vswitchd ovsdb-server; do
		[ -s "$OVS_DIR/$p.pid" ] && stop_pid "$(cat "$OVS_DIR/$p.pid")" 10
	done
	ip netns del "vhbovs$SFX" 2>/dev/null
	OVS_UP=0
	SW_PID=""
}

start_ovs() { # $1 log, $2 normal|p2p, $3 tso (--tcp ovs-tso)
	local tso=false
	# userspace TSO (docs: Documentation/topics/userspace-tso.rst, OVS 3.1):
	# read once at start ("requires restarting the daemon"), so set here
	# with the rest, before vswitchd starts and the vhost ports exist; off,
	# OVS disables VIRTIO_NET_F_CSUM and with it TSO on its vhost ports
	[ "${3:-}" = tso ] && tso=true
	ovs_daemons "$1" $tso || return 1
	ovs_bridge "$1" "$2"
}

# ovsdb-server and ovs-vswitchd-dpdk of one contender, its own db, run
# dir and network namespace
ovs_daemons() { # $1 log, $2 userspace-tso-enable (true|false)
	local lcmask pmdmask c tso=$2
	lcmask=$(printf '0x%x' $((1 << GEN_CPU)))
	pmdmask=0 # ---- multiqueue: a PMD thread per switch CPU
	for c in ${SW_CPUS//,/ }; do pmdmask=$((pmdmask | 1 << c)); done
	pmdmask=$(printf '0x%x' $pmdmask)
	rm -rf "$OVS_DIR"
	mkdir -p "$OVS_DIR"
	export OVS_RUNDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR
	OVS_UP=1
	ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema >>"$1" 2>&1 || return 1
	taskset -c "$GEN_CPU" ovsdb-server "$OVS_DIR/conf.db" \
		--remote="punix:$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovsdb-server.pid" \
		--unixctl="$OVS_DIR/ovsdb-server.ctl" --log-file="$OVS_DIR/ovsdb-server.log" \
		--no-chdir --detach >>"$1" 2>&1 || return 1
	VSCTL --no-wait init >>"$1" 2>&1 || return 1
	VSCTL --no-wait set Open_vSwitch . other_config:dpdk-init=true \
		other_config:dpdk-lcore-mask="$lcmask" \
		other_config:pmd-cpu-mask="$pmdmask" \
		other_config:dpdk-socket-mem="$OVS_SOCKET_MEM" \
		other_config:dpdk-extra="--file-prefix=vhbovs$SFX --no-pci --no-telemetry" \
		other_config:userspace-tso-enable=$tso \
		>>"$1" 2>&1 || return 1
	# in a network namespace of its own: the netdev datapath and bridges are
	# also kernel taps, which two vswitchds (--sliced) would both create
	ip netns del "vhbovs$SFX" 2>/dev/null # left by a killed run
	ip netns add "vhbovs$SFX" >>"$1" 2>&1 || return 1
	# --vxlan: br-phy is a tap in it; without IPv6 it sends nothing
	# (router solicitations) to the generator's underlay port
	[ -n "$VXLAN" ] && ip netns exec "vhbovs$SFX" sysctl -qw \
		net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >>"$1" 2>&1
	ip netns exec "vhbovs$SFX" taskset -c "$GEN_CPU" "$OVS_VSWITCHD" "unix:$OVS_DIR/db.sock" \
		--pidfile="$OVS_DIR/ovs-vswitchd.pid" --unixctl="$OVS_DIR/ovs-vswitchd.ctl" \
		--log-file="$OVS_DIR/ovs-vswitchd.log" --no-chdir --detach >>"$1" 2>&1 || return 1
	SW_PID=$(cat "$OVS_DIR/ovs-vswitchd.pid")
}

ovs_bridge() { # $1 log, $2 normal|p2p
	local brx=()
	# --flows: the MAC table as vhostd's (mac_table_size; default 2048), and
	# as vhostd's no aging of MACs (default 300 s) or of datapath flows
	# (max-idle, default 10 s) while the pair is stopped between windows:
	# the clock runs on, and the revalidator would delete every flow when
	# the process resumes
	if [ "$CUR_FLOWS" -gt 0 ]; then
		brx=(other_config:mac-table-size="$(mac_table_size)" other_config:mac-aging-time=3600)
		VSCTL --no-wait set Open_vSwitch . other_config:max-idle=3600000 >>"$1" 2>&1 || return 1
	fi
	VSCTL add-br vhbbr0 -- set bridge vhbbr0 datapath_type=netdev "${brx[@]}" \
		-- add-port vhbbr0 p0 -- set Interface p0 type=dpdkvhostuserclient \
		options:vhost-server-path="$SOCK0" ofport_request=1 \
		-- add-port vhbbr0 p1 -- set Interface p1 type=dpdkvhostuserclient \
		options:vhost-server-path="$SOCK1" ofport_request=2 >>"$1" 2>&1 || return 1
	if [ "$2" = p2p ]; then
		ovs-ofctl del-flows vhbbr0 &&
		ovs-ofctl add-flow vhbbr0 in_port=1,actions=output:2 &&
		ovs-ofctl add-flow vhbbr0 in_port=2,actions=output:1
	else
		# NORMAL (the bridge's default flow); static MACs of the generator
		# ports so one-way traffic is unicast, not flooded
		APPCTL fdb/add vhbbr0 p0 0 00:00:00:00:00:01 &&
		APPCTL fdb/add vhbbr0 p1 0 00:00:00:00:00:02
	fi >>"$1" 2>&1 || return 1
	# ovs-ofctl talks to the bridge's mgmt socket under OVS_RUNDIR
	ovs-ofctl dump-flows vhbbr0 >>"$1" 2>&1
	[ -n "$CUR_IDLE" ] && [ "$CUR_IDLE" -gt 0 ] && { ovs_idle_ports "$1" || return 1; }
	kill -0 "$SW_PID" 2>/dev/null
}

# --vxlan: OVS-DPDK's userspace tunnel (OVS docs, "Userspace tunneling"):
# br-int with the guest's port p0 and the vxlan port vx0 (remote_ip, key,
# local_ip), br-phy with the underlay port up0 and the local VTEP IP on
# its own (LOCAL, a tap in the namespace) port; a route to the remote
# through br-phy (ovs/route/add) and the remote's MAC (tnl/arp/set), so
# nothing is resolved; br-phy's MAC the one vhostd's underlay has (the
# replayed VXLAN frames are addressed to it). plain: one bridge with p0
# and up0. Both ports dpdkvhostuserclient (the generator listens), as the
# plain bench. Static FDB entries (fdb/add) for the guest's MAC, the remote
# VM's and (br-phy) the remote VTEP's, so nothing floods (br-int's and
# br-phy's LOCAL ports are taps); datapath flows kept while the pair is
# stopped (max-idle, as --flows).
start_ovs_vx() { # $1 log, $2 vxlan|plain
	local mtu umtu
	mtu=$(vx_inner_mtu)
	umtu=$mtu
	[ "$2" = vxlan ] && umtu=$((mtu + 50))
	ovs_daemons "$1" false || return 1
	VSCTL --no-wait set Open_vSwitch . other_config:max-idle=3600000 >>"$1" 2>&1 || return 1
	if [ "$2" = plain ]; then
		VSCTL add-br vhbbr0 -- set bridge vhbbr0 datapath_type=netdev \
			-- add-port vhbbr0 p0 -- set Interface p0 type=dpdkvhostuserclient \
			options:vhost-server-path="$SOCK0" mtu_request="$mtu" ofport_request=1 \
			-- add-port vhbbr0 up0 -- set Interface up0 type=dpdkvhostuserclient \
			options:vhost-server-path="$SOCK1" mtu_request="$umtu" ofport_request=2 \
			>>"$1" 2>&1 || return 1
		{ APPCTL fdb/add vhbbr0 p0 0 "$VX_GUEST_MAC" &&
		  APPCTL fdb/add vhbbr0 up0 0 "$VX_REMOTE_MAC"; } >>"$1" 2>&1 || return 1
	else
		VSCTL add-br br-phy -- set bridge br-phy datapath_type=netdev \
			other_config:hwaddr="$VX_SW_MAC" \
			-- add-port br-phy up0 -- set Interface up0 type=dpdkvhostuserclient \
			options:vhost-server-path="$SOCK1" mtu_request="$umtu" ofport_request=1 \
			-- add-br br-int -- set bridge br-int datapath_type=netdev \
			-- add-port br-int p0 -- set Interface p0 type=dpdkvhostuserclient \
			options:vhost-server-path="$SOCK0" mtu_request="$mtu" ofport_request=1 \
			-- add-port br-int vx0 -- set Interface vx0 type=vxlan \
			options:remote_ip="$VX_REMOTE_IP" options:local_ip="$VX_LOCAL_IP" \
			options:key="$VX_VNI" ofport_request=2 >>"$1" 2>&1 || return 1
		{ ip netns exec "vhbovs$SFX" ip addr add "$VX_LOCAL_IP/24" dev br-phy &&
		  ip netns exec "vhbovs$SFX" ip link set br-phy up; } >>"$1" 2>&1 || return 1
		# the route takes its source address from br-phy's, which
		# vswitchd learns from the kernel a moment later: until then
		# "Error while inserting route"
		local i
		for ((i = 0; i < 50; i++)); do
			APPCTL ovs/route/add "$VX_REMOTE_IP/24" br-phy >>"$1" 2>&1 && break
			sleep 0.2
		done
		[ $i -lt 50 ] || return 1
		{ APPCTL tnl/arp/set br-phy "$VX_REMOTE_IP" "$VX_VTEP_MAC" &&
		  APPCTL fdb/add br-phy up0 0 "$VX_VTEP_MAC" &&
		  APPCTL fdb/add br-int p0 0 "$VX_GUEST_MAC" &&
		  APPCTL fdb/add br-int vx0 0 "$VX_REMOTE_MAC" &&
		  APPCTL ovs/route/show && APPCTL tnl/ports/show &&
		  APPCTL tnl/neigh/show; } >>"$1" 2>&1 || return 1
	fi
	kill -0 "$SW_PID" 2>/dev/null
}

# --idle-ports: CUR_IDLE dpdkvhostuser ports on vhbbr0, in one transaction:
# OVS listens on $OVS_DIR/idleK (vhost-sock-dir is OVS_RUNDIR) and no guest
# connects, as vhostd's idle server ports. (dpdkvhostuserclient ports would
# have librte_vhost's reconnect thread try to connect each of them every
# second, on the generator's CPU.) ovs-vsctl waits until vswitchd has
# created them all; the time it took is logged.
ovs_idle_ports() { # $1 log
	local i args=() t0 t1
	for ((i = 0; i < CUR_IDLE; i++)); do
		args+=(-- add-port vhbbr0 "idle$i" -- set Interface "idle$i" type=dpdkvhostuser)
	done
	t0=$(date +%s.%N)
	ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=900 "${args[@]}" >>"$1" 2>&1 || return 1
	t1=$(date +%s.%N)
	log "ovs: $CUR_IDLE idle dpdkvhostuser ports added in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')s; vswitchd RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$SW_PID/status")" 2>&1 | tee -a "$1" >&2
}

start_vhostd() { # $1 log, $2 learning|xconnect|vlan|tso|mtu, $3 binary
	local ctl=1 ol
	# the first config the build takes: with the control socket key, then
	# without (older builds); --tcp: with the offloads key, then without
	# (builds from before issue 12: no offloads at all, so tso fails in
	# the generator, which says the switch offered none)
	for ol in 1 0; do
		for ctl in 1 ""; do
			VHD_OL_KEY=$ol vhostd_config "$2" "$SOCK0" "$SOCK1" $ctl >"$WORK/vhostd$SFX.ini"
			"$3" --config "$WORK/vhostd$SFX.ini" --check >/dev/null 2>&1 && break 2
		done
	done
	[ "$ol" = 0 ] && [[ $2 = tso || $2 = mtu ]] &&
		log "vhostd $3: no 'offloads' port key (a build from before issue 12): $2 without it"
	VHD_OL_KEY=$ol vhostd_config "$2" "$SOCK0" "$SOCK1" $ctl >"$WORK/vhostd$SFX.ini"
	cat "$WORK/vhostd$SFX.ini" >>"$1"
	echo "# $3" >>"$1"
	setsid taskset -c "$SW_CPUS" "$3" --config "$WORK/vhostd$SFX.ini" </dev/null >>"$1" 2>&1 &
	SW_PID=$!
	wait_sockets || return 1
	[ "${CUR_IDLE:-0}" -gt $VHOSTD_CONF_IDLE ] || return 0
	[ -n "$ctl" ] || { log "vhostd $3: no control socket, cannot add idle ports beyond $VHOSTD_CONF_IDLE"; return 1; }
	vhostd_idle_ports "$1" "$(dirname "$3")/vhostctl"
}

# --vxlan: the guest's MAC a static FDB entry on p0, and (plain) the
# remote VM's on up0. A vxlan port takes no static entry (vhostctl: "port
# vx0 is not on bridge br0", nor vx0/IP): vhostd-vxlan learns the remote
# VM's MAC from the frames the generator sends once at start (mac-aging
# 3600 in its config).
vx_vhostd_fdb() { # $1 log, $2 binary, $3 vxlan|plain
	local c=("$(dirname "$2")/vhostctl" --socket "$(dirname "$SOCK0")/vhostd.ctl")
	"${c[@]}" fdb add br0 "$VX_GUEST_MAC" p0 >>"$1" 2>&1 || return 1
	if [ "$3" = plain ]; then
		"${c[@]}" fdb add br0 "$VX_REMOTE_MAC" up0 >>"$1" 2>&1 || return 1
	fi
	return 0
}

# --idle-ports above VHOSTD_CONF_IDLE: the rest of vhostd's idle ports, as
# in vhostd_config, through the control socket; the time it took is logged
vhostd_idle_ports() { # $1 log, $2 vhostctl
	local i d t0 t1
	d=$(dirname "$SOCK0")
	t0=$(date +%s.%N)
	for ((i = VHOSTD_CONF_IDLE; i < CUR_IDLE; i++)); do
		"$2" --socket "$d/vhostd.ctl" port add "idle$i" bridge=br0 \
			type=vhost-user path="$d/idle$i.sock" mode=server >/dev/null 2>>"$1" || return 1
	done
	t1=$(date +%s.%N)
	log "vhostd: idle ports $VHOSTD_CONF_IDLE..$((CUR_IDLE - 1)) added with vhostctl port add in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')s; RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$SW_PID/status")" 2>&1 | tee -a "$1" >&2
}

start_switch() { # $1 contender, $2 log
	rm -f "$SOCK0" "$SOCK1"
	case $1 in
	wire) start_wire "$2" ;;
	ovs-normal) start_ovs "$2" normal ;;
	ovs-p2p) start_ovs "$2" p2p ;;
	vhostd-learning) start_vhostd "$2" learning "$VHOSTD" ;;
	vhostd-xconnect) start_vhostd "$2" xconnect "$VHOSTD" ;;
	vhostd-vlan) start_vhostd "$2" vlan "$VHOSTD" ;;
	alt-learning) start_vhostd "$2" learning "$VHOSTD_ALT" ;;
	alt-xconnect) start_vhostd "$2" xconnect "$VHOSTD_ALT" ;;
	# --tcp
	vhostd-tso) start_vhostd "$2" tso "$VHOSTD" ;;
	vhostd-mtu) start_vhostd "$2" mtu "$VHOSTD" ;;
	alt-tso) start_vhostd "$2" tso "$VHOSTD_ALT" ;;
	alt-mtu) start_vhostd "$2" mtu "$VHOSTD_ALT" ;;
	ovs-tso) start_ovs "$2" normal tso ;;
	ovs-mtu) start_ovs "$2" normal ;;
	# ext-buffer: a super-frame in one external buffer, as OVS with TSO
	# (not a chain of 2 KiB mbufs); io forwarding does not turn the
	# received offload flags into transmit ones, so what reaches the
	# receiver has no GSO header and a partial checksum not marked as such
	wire-tso) start_wire "$2" ",tso=1,ext-buffer=1" ;;
	wire-mtu) start_wire "$2" ;;
	# --vxlan
	vhostd-vxlan) start_vhostd "$2" vxlan "$VHOSTD" && vx_vhostd_fdb "$2" "$VHOSTD" vxlan ;;
	vhostd-plain) start_vhostd "$2" plain "$VHOSTD" && vx_vhostd_fdb "$2" "$VHOSTD" plain ;;
	alt-vxlan) start_vhostd "$2" vxlan "$VHOSTD_ALT" && vx_vhostd_fdb "$2" "$VHOSTD_ALT" vxlan ;;
	alt-plain) start_vhostd "$2" plain "$VHOSTD_ALT" && vx_vhostd_fdb "$2" "$VHOSTD_ALT" plain ;;
	ovs-vxlan) start_ovs_vx "$2" vxlan ;;
	ovs-plain) start_ovs_vx "$2" plain ;;
	esac
}

# ---------------------------------------------------------------- results
show_result() { # $1 one result line: a progress line on stderr
	python3 - "$1" <<'EOF' >&2
import json, sys, time
r = json.loads(sys.argv[1])
t = time.strftime("%H:%M:%S")
# --flows / --idle-ports / --queues / --sw-lcores: the case, and the
# switch's state (and, multiqueue, its busy threads)
case = "".join(f" {t}{r[k]}" for k, t in (("flows", "f"), ("idle_ports", "i"),
               ("queues", "q"), ("sw_lcores", "l")) if k in r)
sw = "".join(f" {k} {r[k]}" for k in ("learn_s", "learn_timeout",
             "fdb_entries", "flooded_delta", "upcalls_delta") if k in r)
if r.get("sw_threads"):
    sw += " threads " + ",".join(r["sw_threads"])
if "error" in r and r.get("size") == "tcp":
    print(f"[bench {t}] {r['label']:<12} rep {r['rep']} ERROR {r['error'][:300]}")
elif "error" in r:
    print(f"[bench {t}] {r['label']:<16} {r['size']:>4}B {r['dir']:<6}{case} rep {r['rep']} ERROR {r['error'][:200]}")
elif "payload_gbps" in r:
    # --tcp (bench/tcp.py): TCP payload Gbit/s, frames, the generator's load
    st = "DISTURBED: " + "; ".join(r["why"]) if r["disturbed"] else "ok"
    if r.get("notes"):
        st += " (" + "; ".join(r["notes"]) + ")"
    cps = r.get("cycles_per_seg")
    print(f"[bench {t}] {r['label']:<12} rep {r['rep']} {r['payload_gbps']:6.2f} Gbit/s payload "
          f"{r['mpps']:6.3f} Mpps frames of {r['mean_size']:5.0f} B, {r['super_frac']:.0%} super, "
          f"{r['acks_kpps']:5.0f} kACK/s, {r.get('inflight', 0)} in flight, {cps or 0:4.0f} cyc/seg, gen busy {r.get('gen_busy') or 0:.0%} "
          f"ramp {' '.join(f'{b}:{m}' for b, m in r['ramp'])} {st}")
else:
    st = "DISTURBED: " + "; ".join(r["why"]) if r["disturbed"] else "ok"
    print(f"[bench {t}] {r['label']:<16} {r['size']:>4}B {r['dir']:<6}{case} rep {r['rep']} "
          f"{r['mpps']:6.2f} Mpps {r['gbps']:6.2f} Gbit/s {r.get('cycles_per_pkt', 0):5.0f} cyc/pkt "
          f"{r.get('proc_cycles_per_pkt') or 0:5.0f} proc "
          f"at {r.get('level', '?')} of ramp {' '.join(f'{b}:{m}' for b, m in r['ramp'])}{sw} {st}")
EOF
}

# ---------------------------------------------------------------- cases
# set_case FLOWS IDLE [QUEUES SW_LCORES]: the --flows / --idle-ports /
# --queues / --sw-lcores case measured next ("" = the option is off).
# CASE_TAG names its log files, CASE_JSON goes in the result lines bench.sh
# writes itself, CASE_ARGS to gen.py / slices.py.
CASE_TAG="" CASE_JSON="" CASE_ARGS=()
set_case() {
	CUR_FLOWS=${1:-0} CUR_IDLE=$2
	CASE_TAG="" CASE_JSON="" CASE_ARGS=()
	# --vxlan: where gen.py writes its pcaps (bench/vxlan.py)
	[ -n "$VXLAN" ] && CASE_ARGS+=(--pcap-dir "$WORK/pcap")
	if [ -n "$1" ]; then
		CASE_TAG+="-f$1" CASE_JSON+=",\"flows\":$1"
		CASE_ARGS+=(--flows "$1" --pcap-dir "$WORK/pcap")
	fi
	if [ -n "$2" ]; then
		CASE_TAG+="-i$2" CASE_JSON+=",\"idle_ports\":$2"
		CASE_ARGS+=(--idle-ports "$2")
	fi
	# ---- multiqueue
	CUR_Q=${3:-} CUR_SWL=${4:-} CUR_MQ=${3:-}${4:-}
	SW_CPUS=$(sw_cpus "${4:-1}")
	if [ -n "$CUR_Q" ]; then
		CASE_TAG+="-q$3" CASE_JSON+=",\"queues\":$3"
		CASE_ARGS+=(--queues "$3" --pcap-dir "$WORK/pcap" --mq-gen "$MQ_GEN")
	fi
	if [ -n "$CUR_SWL" ]; then
		CASE_TAG+="-l$4" CASE_JSON+=",\"sw_lcores\":$4"
		CASE_ARGS+=(--sw-lcores "$4")
		# a switch lcore on the generator's CPU: two pollers share it
		[[ ,$SW_CPUS, = *",$GEN_CPU,"* ]] &&
			CASE_ARGS+=(--gen-min-share "$GEN_SHARED_MIN")
	fi
	# ---- end multiqueue
}

# ---- multiqueue
# show_spec CONTENDER: --queues / --sw-lcores, how gen.py / slices.py show
# the switch's rx queue placement and load once the traffic runs (after
# the ramp; swstate.py show): vhostd's `vhostctl lcores` and its ports'
# queues, OVS's dpif-netdev/pmd-rxq-show. wire (testpmd) prints its
# per-stream counters when it exits (its switch log).
show_spec() {
	[ -n "$CUR_MQ" ] || return 0
	case $1 in
	vhostd-*) echo "vhostd=$(dirname "$VHOSTD")/vhostctl,$(dirname "$SOCK0")/vhostd.ctl" ;;
	alt-*) echo "vhostd=$(dirname "$VHOSTD_ALT")/vhostctl,$(dirname "$SOCK0")/vhostd.ctl" ;;
	ovs-*) echo "ovs=$OVS_DIR/ovs-vswitchd.ctl" ;;
	esac
}
# ---- end multiqueue

# probe_spec CONTENDER: --flows, how gen.py / slices.py read the switch's
# MAC table and floods (swstate.py): the learning bridges only (gen.py waits
# until they have learned every MAC; xconnect, p2p and wire learn nothing)
probe_spec() {
	if [ "$TCP" = 1 ]; then
		# --tcp (bench/tcp.py probe): the switch's offload counters
		case $1 in
		vhostd-* | alt-*) echo "vhostd=vhdbench$SFX" ;;
		ovs-*) echo "ovs=$OVS_DIR" ;;
		esac
		return 0
	fi
	[ "$CUR_FLOWS" -gt 0 ] || return 0
	case $1 in
	vhostd-learning | alt-learning) echo "vhostd=vhdbench$SFX" ;;
	ovs-normal) echo "ovs=$OVS_DIR/ovs-vswitchd.ctl" ;;
	esac
}

# ---------------------------------------------------------------- sliced
# --tcp: slices.py runs vhd-tcpgen (bench/tcp.py) with these
TCP_ARGS=()
[ "$TCP" = 1 ] && TCP_ARGS=(--tcp --tcpgen "$TCPGEN" --tcp-levels "$TCP_LEVELS"
	--tcp-segs "$TCP_SEGS" --tcp-ack-bytes "$TCP_ACK_BYTES")
[ "$TCP" = 1 ] && [ "$TCP_CHECK" = 1 ] && TCP_ARGS+=(--tcp-check)
run_sliced_case() { # $1 size, $2 dir, $3 first round's rep number - 1
	local c k specs=() srv line
	python3 "$HERE/bench/procstat.py" "$WAIT_QUIET" "$QUIET_BUSY" 2>&1 |
		sed 's/^/[bench] /' >&2
	for k in "${!CONTENDERS[@]}"; do
		c=${CONTENDERS[$k]}
		if [[ $c = vhostd-* && ! -x $VHOSTD ]]; then
			[ "$3" = 0 ] && printf '{"label":"%s","size":"%s","dir":"%s"%s,"rep":1,"skipped":true,"error":"skipped","disturbed":true,"why":["skipped: no vhostd binary at %s"]}\n' \
				"$c" "$1" "$2" "$CASE_JSON" "$VHOSTD" >>"$RESULTS"
			continue
		fi
		slot "$k"
		SLOG=$OUT/$c-$1-$2$CASE_TAG.switch.log
		if ! start_switch "$c" "$SLOG"; then
			log "$c: switch failed to start, see $SLOG"
			printf '{"label":"%s","size":"%s","dir":"%s"%s,"rep":%d,"attempt":0,"error":"switch failed to start","disturbed":true,"why":["error"]}\n' \
				"$c" "$1" "$2" "$CASE_JSON" $(($3 + 1)) >>"$RESULTS"
			stop_switch
			continue
		fi
		kill -STOP "$SW_PID"
		SLOT_LABELS[$k]=$c SLOT_PIDS[$k]=$SW_PID SLOT_LOGS[$k]=$SLOG
		OVS_UP=0 SW_PID=""
		srv=0
		[[ $c = ovs-* ]] && srv=1
		# --tcp: always a probe field (the offload counters)
		specs+=(--contender "$c:${SLOT_PIDS[$k]}:$SOCK0:$SOCK1:$srv:vhbgen$k${CASE_ARGS:+:$(probe_spec "$c")}${TCP_ARGS:+:$(probe_spec "$c")}${CUR_MQ:+:$(show_spec "$c")}")
	done
	if [ ${#specs[@]} -gt 0 ]; then
		python3 "$HERE/bench/slices.py" "${specs[@]}" --size "$1" --dir "$2" \
			--bursts "$BURSTS" --ramp-interval "$RAMP_INTERVAL" \
			--rounds "$ROUNDS" --rep-base "$3" --window "$WINDOW" \
			--settle "$SETTLE" --warmup "$WARMUP" --gen-cpu "$GEN_CPU" \
			--sw-cpu "$SW_CPU" --freq-mhz "$CPU_MHZ" --log-dir "$OUT" \
			--vdev-extra "$GEN_DEVARGS" ${CASE_TAG:+"--log-tag=$CASE_TAG"} \
			"${CASE_ARGS[@]}" "${TCP_ARGS[@]}" |
			while read -r line; do
				echo "$line" >>"$RESULTS"
				show_result "$line"
			done
	fi
	stop_slots
}

# ---------------------------------------------------------------- latency
# --latency LOADS: one-way latency through each contender, its own path
# (the throughput path below does not run). Per repetition, size and
# contender (order rotated per repetition, as --sequential): a fresh switch
# (start_switch, polling on SW_CPU) and one vhd-latgen (bench/latgen.c) on
# GEN_CPU, its two net_virtio_user ports on the switch's sockets. latgen
# learns the bridge (:02 from port 1, then :01 from port 0), measures the
# contender's capacity (as fast as it can send for --latency-seconds), then
# each load in % of that capacity (TSC-paced), every measurement after a
# drain and --latency-warmup s at its rate, and prints one LAT line each.
LAT_RESULTS=""

lat_error() { # $1 contender, $2 size, $3 rep, $4 why
	printf '{"label":"%s","size":%s,"rep":%d,"error":"%s"}\n' "$1" "$2" "$3" "$4" >>"$LAT_RESULTS"
}

lat_run() { # $1 contender, $2 size, $3 rep
	local c=$1 size=$2 rep=$3 glog srv="" budget rc nl
	SLOG=$OUT/lat-$c-$size-r$rep.switch.log
	glog=$OUT/lat-$c-$size-r$rep.latgen.log
	python3 "$HERE/bench/procstat.py" "$WAIT_QUIET" "$QUIET_BUSY" 2>&1 |
		sed 's/^/[bench] /' >&2
	if ! start_switch "$c" "$SLOG"; then
		log "$c: switch failed to start, see $SLOG"
		lat_error "$c" "$size" "$rep" "switch failed to start"
		stop_switch
		return
	fi
	# OVS's ports are vhost-user clients: latgen's virtio_user listens
	[[ $c = ovs-* ]] && srv=",server=1"
	nl=${#LAT_L[@]}
	# links and learning (30 s each at most), then capacity and the loads
	budget=$(awk -v n="$nl" -v s="$LAT_SECONDS" -v w="$LAT_WARMUP" 'BEGIN {printf "%d", 90 + (n + 1) * (s + w + 3)}')
	echo "# $c, size $size, rep $rep" >"$glog"
	timeout -k 5 "$budget" taskset -c "$GEN_CPU" "$LATGEN" \
		--lcores "0@$GEN_CPU" --file-prefix vhblat --in-memory \
		--single-file-segments --no-pci --no-telemetry -m 256 \
		--vdev "net_virtio_user0,path=$SOCK0,queue_size=1024,mac=00:00:00:00:00:01$srv$GEN_DEVARGS" \
		--vdev "net_virtio_user1,path=$SOCK1,queue_size=1024,mac=00:00:00:00:00:02$srv$GEN_DEVARGS" \
		-- --capacity --load "$LATENCY" --seconds "$LAT_SECONDS" \
		--warmup "$LAT_WARMUP" --size "$size" </dev/null >>"$glog" 2>&1 &
	echo $! >"$GEN_PIDFILE"
	wait $!
	rc=$?
	: >"$GEN_PIDFILE"
	stop_switch
	[ $rc = 0 ] || log "$c: vhd-latgen exit status $rc, see $glog"
	grep -q '^LAT mode=capacity' "$glog" || { lat_error "$c" "$size" "$rep" "no capacity measured (latgen exit $rc)"; return; }
	python3 "$HERE/bench/latreport.py" add "$c" "$size" "$rep" "$LAT_RESULTS" <"$glog"
}

lat_summary() {
	local t_end
	t_end=$(date +%s)
	{
		echo "# vhostd bench --latency $LATENCY $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname), $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //')"
		echo "# switch CPU $SW_CPU, vhd-latgen CPU $GEN_CPU; one-way p0 -> p1; loads in % of each contender's own capacity; ${LAT_SECONDS}s per measurement after ${LAT_WARMUP}s warm-up; reps $REPS, sizes $SIZES${GEN_DEVARGS:+, generator devargs $GEN_DEVARGS}; wall time $((t_end - t_start))s"
		echo "# vhostd $VHOSTD (tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
		echo
		python3 "$HERE/bench/latreport.py" summary "$LAT_RESULTS" "$LATENCY"
	} | tee "$OUT/latency-summary.txt"
}

lat_main() {
	local rep size k c nc=${#CONTENDERS[@]} per_run nruns=0
	LAT_RESULTS=$OUT/latency.jsonl
	: >"$LAT_RESULTS"
	for c in "${CONTENDERS[@]}"; do
		[[ $c = vhostd-* && ! -x $VHOSTD ]] || nruns=$((nruns + 1))
	done
	per_run=$(awk -v n="${#LAT_L[@]}" -v s="$LAT_SECONDS" -v w="$LAT_WARMUP" 'BEGIN {printf "%d", 12 + (n + 1) * (s + w + 0.2)}')
	log "latency: contenders ${CONTENDERS[*]}; loads $LATENCY % of each one's capacity; sizes $SIZES; reps $REPS"
	log "estimated time: ~$((nruns * ${#SIZE_L[@]} * REPS * per_run / 60 + 1)) min (${per_run}s per run), plus up to ${WAIT_QUIET}s per run waiting for a quiet machine (--wait-quiet)"
	log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	log "logs and results: $OUT"
	[[ " ${CONTENDERS[*]} " = *" vhostd-"* && ! -x $VHOSTD ]] &&
		log "vhostd: SKIPPED, no binary at $VHOSTD (build it first, or --vhostd PATH)"
	t_start=$(date +%s)
	for ((rep = 1; rep <= REPS; rep++)); do
		for size in "${SIZE_L[@]}"; do
			for ((k = 0; k < nc; k++)); do
				c=${CONTENDERS[$(((k + rep - 1) % nc))]}
				[[ $c = vhostd-* && ! -x $VHOSTD ]] && continue
				lat_run "$c" "$size" "$rep"
			done
		done
	done
	lat_summary
}

if [ -n "$LATENCY" ]; then
	lat_main
	[ -s "$RESULTS" ] || rm -f "$RESULTS" # the throughput path's, unused here
	exit 0
fi

# ---------------------------------------------------------------- main loop
NC=${#CONTENDERS[@]}
nruns=0
for c in "${CONTENDERS[@]}"; do
	if [[ $c = vhostd-* && ! -x $VHOSTD ]]; then continue; fi
	nruns=$((nruns + 1))
done
ncases=$((${#SIZE_L[@]} * ${#DIR_L[@]} * ${#FLOWS_L[@]} * ${#IDLE_L[@]} * ${#Q_L[@]} * ${#SWL_L[@]}))
ri=$RAMP_INTERVAL
[ "$PICK" = best ] && ri=$INTERVAL
per_run=$(python3 -c "b='$BURSTS'.split(','); print(int(10 + $WARMUP + (len(b)-1)*($ri+1) + $INTERVAL + len(b)*0.5))")
log "contenders: ${CONTENDERS[*]}; sizes: $SIZES; dirs: $DIRS;${FLOWS:+ flows: $FLOWS;}${IDLE_PORTS:+ idle ports: ${IDLE_L[*]};}${QUEUES:+ queues: $QUEUES;}${SW_LCORES:+ switch lcores: $SW_LCORES;} $([ $SLICED = 1 ] && echo "sliced, $REPS sessions x $ROUNDS rounds" || echo "sequential, reps: $REPS")"
# ---- multiqueue: what the cases do with the CPUs
if [ -n "$QUEUES" ] && [ "$MQ_GEN" = replay ]; then
	log "--queues: each generator port has N queue pairs (virtio_user queues=N, testpmd --rxq/--txq=N) and replays pcap frames on every queue (open loop, port MACs; with --flows the MAC pairs spread over the queues)"
elif [ -n "$QUEUES" ]; then
	log "--queues, --mq-gen circulate: each generator port has N queue pairs, tx_first injects on every queue; the packets circulate on the queues the switch sends on"
fi
for k in "${SWL_L[@]}"; do
	[ -n "$k" ] || continue
	sc=$(sw_cpus "$k")
	msg="--sw-lcores $k: switch datapath CPUs $sc (vhostd lcores, OVS pmd-cpu-mask, wire --nb-cores=$k)"
	[[ ,$sc, = *",$GEN_CPU,"* ]] &&
		msg+="; CPU $GEN_CPU is shared by the generator and a switch lcore in the scheduler's time slices (seen: about 2/3 and 1/3 of it), the generator's share counts as disturbed only below $GEN_SHARED_MIN, and the rate is bound by that CPU"
	[ "$k" -gt 1 ] && msg+="; cyc/pkt = CPU time of all the switch's threads (no perf)"
	log "$msg"
done
# ---- end multiqueue
if [ $SLICED = 1 ]; then
	levels=$BURSTS
	[ -n "$VXLAN" ] && levels=0 # replay: one level, no ramp
	[ -n "$VXLAN" ] && log "--vxlan $VXLAN: the generator replays frames (net_pcap, open loop) into the guest port (encap) or the underlay port (decap) and counts what comes out of the other; vxlan contenders tunnel (VNI $VX_VNI, $VX_LOCAL_IP <-> $VX_REMOTE_IP), -plain and wire carry the same inner frames bare"
	[ "$TCP" = 1 ] && levels=$TCP_LEVELS
	[ "$TCP" = 1 ] && log "--tcp: vhd-tcpgen, one TCP stream port 0 -> port 1 through each contender, payload in flight ramped over $TCP_LEVELS MSS segments, -tso: super-frames of $TCP_SEGS x 1448 B; -mtu: 1514-byte frames; Gbit/s = TCP payload"
	per_case=$(python3 -c "n=$nruns; b=len('$levels'.split(',')); print(int(n * (12 + $WARMUP + b * ($RAMP_INTERVAL + 1)) + $ROUNDS * n * ($SETTLE + $WINDOW + 0.5)))")
	log "estimated time: ~$((REPS * ncases * per_case / 60 + 1)) min (${per_case}s per case and session: start and ramp each contender, then $ROUNDS rounds)"
else
	log "estimated time: ~$((nruns * ncases * REPS * per_run / 60 + 1)) min (${per_run}s per measurement, plus retries)"
fi
log "$CYC_NOTE"
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/bench/procstat.py" 0 "$QUIET_BUSY" 2>&1 | sed 's/^still not quiet after 1s: /now: /' >&2
log "logs and results: $OUT"
[[ " ${CONTENDERS[*]} " = *" vhostd-"* && ! -x $VHOSTD ]] &&
	log "vhostd: SKIPPED, no binary at $VHOSTD (build it first, or --vhostd PATH)"

t_start=$(date +%s)
if [ $SLICED = 1 ]; then
	for ((rep = 1; rep <= REPS; rep++)); do
		for flows in "${FLOWS_L[@]}"; do
			for idle in "${IDLE_L[@]}"; do
				for q in "${Q_L[@]}"; do # ---- multiqueue: two more dimensions
					for swl in "${SWL_L[@]}"; do
						set_case "$flows" "$idle" "$q" "$swl"
						for size in "${SIZE_L[@]}"; do
							for dir in "${DIR_L[@]}"; do
								run_sliced_case "$size" "$dir" $(((rep - 1) * ROUNDS))
							done
						done
					done
				done
			done
		done
	done
	summarize ""
	exit 0
fi
for ((rep = 1; rep <= REPS; rep++)); do
	for flows in "${FLOWS_L[@]}"; do
		for idle in "${IDLE_L[@]}"; do
			# ---- multiqueue: two more dimensions (body not re-indented)
			for q in "${Q_L[@]}"; do for swl in "${SWL_L[@]}"; do
			set_case "$flows" "$idle" "$q" "$swl"
			for size in "${SIZE_L[@]}"; do
				for dir in "${DIR_L[@]}"; do
					for ((k = 0; k < NC; k++)); do
						# rotate the order each repetition so no contender always goes first
						c=${CONTENDERS[$(((k + rep - 1) % NC))]}
						if [[ $c = vhostd-* && ! -x $VHOSTD ]]; then
							[ $rep = 1 ] && printf '{"label":"%s","size":"%s","dir":"%s"%s,"rep":%d,"skipped":true,"error":"skipped","disturbed":true,"why":["skipped: no vhostd binary at %s"]}\n' \
								"$c" "$size" "$dir" "$CASE_JSON" "$rep" "$VHOSTD" >>"$RESULTS"
							continue
						fi
						for ((att = 0; att <= RETRIES; att++)); do
							SLOG=$OUT/$c-$size-$dir$CASE_TAG-r$rep-a$att.switch.log
							glog=$OUT/$c-$size-$dir$CASE_TAG-r$rep-a$att.gen.log
							python3 "$HERE/bench/procstat.py" "$WAIT_QUIET" "$QUIET_BUSY" 2>&1 |
								sed 's/^/[bench] /' >&2
							if ! start_switch "$c" "$SLOG"; then
								log "$c: switch failed to start, see $SLOG"
								printf '{"label":"%s","size":"%s","dir":"%s"%s,"rep":%d,"attempt":%d,"error":"switch failed to start","disturbed":true,"why":["error"]}\n' \
									"$c" "$size" "$dir" "$CASE_JSON" "$rep" "$att" >>"$RESULTS"
								stop_switch
								continue
							fi
							srv=()
							[[ $c = ovs-* ]] && srv=(--server)
							line=$(python3 "$HERE/bench/gen.py" --label "$c" \
								--sock0 "$SOCK0" --sock1 "$SOCK1" "${srv[@]}" \
								--prefix vhbgen --gen-cpu "$GEN_CPU" --sw-cpu "$SW_CPU" \
								--sw-pid "$SW_PID" --size "$size" --dir "$dir" \
								--bursts "$BURSTS" --warmup "$WARMUP" \
								--ramp-interval "$RAMP_INTERVAL" --interval "$INTERVAL" \
								--pick "$PICK" \
								--freq-mhz "$CPU_MHZ" --log "$glog" \
								--pidfile "$GEN_PIDFILE" --rep "$rep" --attempt "$att" \
								--vdev-extra "$GEN_DEVARGS" "${CASE_ARGS[@]}" \
								${CASE_ARGS:+--probe "$(probe_spec "$c")"} \
								${CUR_MQ:+--show "$(show_spec "$c")"})
							: >"$GEN_PIDFILE"
							proc=$(proc_cycles_live "$c")
							stop_switch
							[ "$c" = wire ] && proc=$(python3 "$HERE/bench/proc_cycles.py" testpmd <"$SLOG")
							[ -n "$line" ] && line=$(python3 -c 'import json, sys
r = json.loads(sys.argv[1])
r["proc_cycles_per_pkt"] = float(sys.argv[2]) if sys.argv[2] else None
print(json.dumps(r))' "$line" "$proc")
							[ -n "$line" ] || line=$(printf '{"label":"%s","size":"%s","dir":"%s"%s,"rep":%d,"attempt":%d,"error":"generator gave no result","disturbed":true,"why":["error"]}' "$c" "$size" "$dir" "$CASE_JSON" "$rep" "$att")
							echo "$line" >>"$RESULTS"
							show_result "$line"
							grep -q '"disturbed": false' <<<"$line" && break
							[ $att -lt "$RETRIES" ] && log "retrying"
						done
					done
				done
			done
			done; done # ---- end multiqueue
		done
	done
done
summarize ""
