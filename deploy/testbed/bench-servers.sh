#!/usr/bin/env bash
# Sharded parameter servers over rate-limited links: a 1 M-parameter MLP (64-1024-960-2, 1,052,546
# float32 weights), N worker hosts, the weights on the master alone (S = 0) or on S = 1, 2, 4 server
# hosts, every host's link shaped to RATE each way (tc tbf). Fits run interleaved, REPEATS times each;
# prints each fit's ms per iteration, then a markdown table: bytes each link carries per round, the time
# the link rate predicts, the median measured. Needs root; builds nothing (CHIMERA: the binary to run).
#
#   deploy/testbed/bench-servers.sh                       defaults: RATE=1gbit N=4 REPEATS=3 ITERATIONS=20
#   RATE=off deploy/testbed/bench-servers.sh              unshaped veth (the CPU's share of the round)
#   CURVE=off deploy/testbed/bench-servers.sh             without CURVE (its encryption is CPU the 2-core bed lacks)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CHIMERA=${CHIMERA:-$PWD/.build/release/chimera}
RATE=${RATE:-1gbit}
N=${N:-4}
REPEATS=${REPEATS:-3}
ITERATIONS=${ITERATIONS:-20}
BATCH=${BATCH:-4}
SHARDS=${SHARDS:-"0 1 2 4"}
export TESTBED_PREFIX=${TESTBED_PREFIX:-chbs} TESTBED_SUBNET=${TESTBED_SUBNET:-10.78.0}
bed=deploy/testbed/testbed.sh
work=$(mktemp -d /tmp/chimera-bench-servers.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    "$bed" down >/dev/null 2>&1 || true
    if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

workers=(); for i in $(seq 1 "$N"); do workers+=("w$i"); done
"$bed" up master s1 s2 s3 s4 "${workers[@]}" >/dev/null
ip_of() { "$bed" ip "$1"; }
for role in master worker server client; do "$CHIMERA" keys --output "$work/$role" >/dev/null; done
key() { cat "$work/$1.public"; }
curve() { # the CURVE flags of a role, unless CURVE=off
    [ "${CURVE:-on}" = off ] && return 0
    case $1 in
    master) echo --curve-keys "$work/master" --curve-allow-workers "$(key worker)" --curve-allow-servers "$(key server)" --curve-allow-clients "$(key client)" ;;
    server) echo --curve-server-key "$(key master)" --curve-keys "$work/server" --curve-allow "$(key worker)" ;;
    *) echo --curve-server-key "$(key master)" --curve-keys "$work/$1" ;;
    esac
}
"$CHIMERA" data synth --out "$work/data" --rows $((N * 2000)) --features 64 --workers "$N" >/dev/null

master=$(ip_of master)
start() { # host, then the command's arguments; its output goes to $work/host.log
    local host=$1; shift
    "$bed" exec "$host" "$CHIMERA" "$@" >"$work/$host.log" 2>&1 &
    pids+=($!)
}
start master master --host "$master" --port 5555 $(curve master)
sleep 1
for s in 1 2 3 4; do
    start "s$s" server --master "tcp://$master:5555" --name "s$s" --host "$(ip_of "s$s")" $(curve server)
done
for i in $(seq 1 "$N"); do
    start "w$i" worker --master "tcp://$master:5555" --data "$work/data/worker-$i" --name "w$i" $(curve worker)
done
for host in master s1 s2 s3 s4 "${workers[@]}"; do "$bed" shape "$host" "$RATE" >/dev/null; done
client=(--master "tcp://$master:5557" $(curve client))
"$CHIMERA" fit "${client[@]}" --wait-workers "$N" --iterations 1 --model mlp --hidden 1024,960 --servers 0 >/dev/null

declare -A runs
for repeat in $(seq 1 "$REPEATS"); do
    for s in $SHARDS; do
        ms=$("$CHIMERA" fit "${client[@]}" --iterations "$ITERATIONS" --model mlp --hidden 1024,960 \
            --batch-size "$BATCH" --servers "$s" | awk '/ms per iteration/ { print $(NF-3) }')
        echo "S = $s, repeat $repeat: $ms ms per iteration"
        runs[$s]="${runs[$s]:-} $ms"
    done
done

P=1052546
bytes=$((P * 4))
rate_bytes() { case "$RATE" in *gbit) echo $((${RATE%gbit} * 125000000));; *mbit) echo $((${RATE%mbit} * 125000));; *) echo 0;; esac; }
per_second=$(rate_bytes)
echo
echo "| S | busiest link per round (in, then out) | predicted ms | measured ms (median of $REPEATS) | runs |"
echo "|---:|---|---:|---:|---|"
for s in $SHARDS; do
    holders=$((s == 0 ? 1 : s))
    # Each holder (the master, or a server) takes N ranges of P/holders in, then sends N out; each
    # worker sends P and takes P. The busier of the two sets the pace, once each way.
    server_side=$((N * bytes / holders))
    side=$((server_side > bytes ? server_side : bytes))
    median=$(tr ' ' '\n' <<<"${runs[$s]}" | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    predicted="—"
    if [ "$per_second" -gt 0 ]; then predicted=$(awk -v b="$side" -v r="$per_second" 'BEGIN { printf "%.0f", 2 * b / r * 1000 }'); fi
    printf '| %s | %.1f MB + %.1f MB | %s | %s |%s |\n' "$s" "$(awk -v b="$side" 'BEGIN { print b / 1e6 }')" \
        "$(awk -v b="$side" 'BEGIN { print b / 1e6 }')" "$predicted" "$median" "${runs[$s]}"
done
