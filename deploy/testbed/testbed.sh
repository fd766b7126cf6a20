#!/usr/bin/env bash
# A multi-host test bed on one Linux machine: each "host" is a network namespace with its own IP on a
# private subnet, joined to the others by a veth pair and a bridge, so Chimera's processes talk over
# real interfaces (not loopback) and links can be cut, restored and rate-limited. Needs root and `ip`.
#
#   testbed.sh up NAME...          create the bridge and one host per NAME (IPs 10.77.0.10, .11, … in order)
#   testbed.sh down                remove every host and the bridge
#   testbed.sh ip NAME             print NAME's IP
#   testbed.sh exec NAME CMD...    run CMD inside NAME (exec: the pid is CMD's)
#   testbed.sh link NAME down|up   cut or restore NAME's link (a partition, and its end)
#   testbed.sh shape NAME RATE     limit NAME's link to RATE each way (tc tbf, e.g. 1gbit); RATE "off" removes it
#   testbed.sh list                the hosts and their IPs
#
# Names: letters, digits and dashes, at most 9 characters (interface names are limited to 15).
# TESTBED_PREFIX (default "chtb") names the namespaces, the bridge and the links, so two beds can coexist.
set -euo pipefail
prefix=${TESTBED_PREFIX:-chtb}
subnet=${TESTBED_SUBNET:-10.77.0}
bridge="${prefix}-br"
state="/run/${prefix}-testbed"

die() { echo "testbed: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"; }
check_name() { [[ "$1" =~ ^[A-Za-z0-9-]{1,9}$ ]] || die "bad host name '$1': letters, digits, dashes, at most 9"; }
host_ip() { awk -v n="$1" '$1 == n { print $2 }' "$state/hosts" 2>/dev/null; }

up() {
    need_root
    [ $# -gt 0 ] || die "up: name at least one host"
    mkdir -p "$state"
    : >"$state/hosts"
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    # The machine itself is a host on the bed too (.1): tests and users reach the gateway from it.
    ip addr replace "$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    local index=10
    for name in "$@"; do
        check_name "$name"
        local ns="$prefix-$name" outside="${prefix}-$name" address="$subnet.$index"
        ip netns del "$ns" 2>/dev/null || true
        ip link del "$outside" 2>/dev/null || true
        ip netns add "$ns"
        ip link add "$outside" type veth peer name eth0 netns "$ns"
        ip link set "$outside" master "$bridge"
        ip link set "$outside" up
        ip -n "$ns" addr add "$address/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        echo "$name $address" >>"$state/hosts"
        index=$((index + 1))
    done
    # Bridged frames must not be dropped by the host's firewall rules.
    if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo 0 >/proc/sys/net/bridge/bridge-nf-call-iptables; fi
    cat "$state/hosts"
}

down() {
    need_root
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do ip netns del "$ns"; done
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$state"
}

command=${1:-}
[ -n "$command" ] || { sed -n '2,16p' "$0"; exit 2; }
shift
case "$command" in
up) up "$@" ;;
down) down ;;
ip) check_name "${1:-}"; address=$(host_ip "$1"); [ -n "$address" ] || die "no host $1"; echo "$address" ;;
exec) need_root; check_name "${1:-}"; name=$1; shift; exec ip netns exec "$prefix-$name" "$@" ;;
link)
    need_root; check_name "${1:-}"
    case "${2:-}" in down | up) ip link set "$prefix-$1" "$2" ;; *) die "link NAME down|up" ;; esac ;;
shape)
    need_root; check_name "${1:-}"; rate=${2:-}; [ -n "$rate" ] || die "shape NAME RATE"
    for dev in "$prefix-$1"; do
        if [ "$rate" = off ]; then
            tc qdisc del dev "$dev" root 2>/dev/null || true
            ip netns exec "$prefix-$1" tc qdisc del dev eth0 root 2>/dev/null || true
        else
            # Both directions: the bridge side shapes what the host receives, eth0 what it sends.
            tc qdisc replace dev "$dev" root tbf rate "$rate" burst 1mb latency 50ms
            ip netns exec "$prefix-$1" tc qdisc replace dev eth0 root tbf rate "$rate" burst 1mb latency 50ms
        fi
    done ;;
list) cat "$state/hosts" 2>/dev/null || true ;;
*) die "unknown command $command (up, down, ip, exec, link, shape, list)" ;;
esac
