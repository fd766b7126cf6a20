#!/usr/bin/env bash
# The README's main command. Installs what is missing, builds in release mode, starts a local cluster
# with `chimera local` (a master, one worker process per folder of the committed breast-cancer data and
# the HTTP gateway, all on 127.0.0.1), fits through the HTTP API with a progress display, predicts the
# held-out rows over HTTP, prints accuracy and timings, and stops everything.
#   deploy/quickstart.sh                          logistic regression, BSP, 200 iterations
#   deploy/quickstart.sh --staleness 2 --iterations 500      extra arguments go to `chimera http fit`
#   CHIMERA_MODE=aggregation deploy/quickstart.sh            bagged decision trees instead
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
swift build -c release --product chimera
bin=.build/release/chimera
data=deploy/data/breast-cancer
mode=${CHIMERA_MODE:-parameter-server}
workers=$(ls -d "$data"/worker-* | wc -l)
run=$(mktemp -d)
local_pid=
cleanup() {
    if [ -n "$local_pid" ]; then kill "$local_pid" 2>/dev/null || true; wait "$local_pid" 2>/dev/null || true; fi
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s%N)
"$bin" local --mode "$mode" --data "$data" --port 0 >"$run/local.out" 2>"$run/local.log" &
local_pid=$!
for _ in $(seq 1 600); do
    grep -q '^chimera-local ' "$run/local.out" 2>/dev/null && break
    kill -0 "$local_pid" 2>/dev/null || break
    sleep 0.1
done
url=$(sed -n 's/^chimera-local url=\([^ ]*\).*/\1/p' "$run/local.out")
[ -n "$url" ] || { cat "$run/local.log" >&2; echo "the local cluster did not start" >&2; exit 1; }
echo "cluster: master, $workers workers and gateway $url ($mode), up in $(( ($(date +%s%N) - start) / 1000000 )) ms"

if [ "$mode" = aggregation ]; then
    echo "fitting bagged decision trees through the HTTP API…"
    "$bin" http fit --gateway "$url" --wait-workers "$workers" --trees-per-worker 8 --max-features sqrt "$@"
else
    echo "fitting logistic regression through the HTTP API…"
    "$bin" http fit --gateway "$url" --wait-workers "$workers" --iterations 200 --eta0 0.5 "$@"
fi
echo "predicting the $(($(wc -l <"$data/test/y_test.csv") - 1)) held-out rows over HTTP…"
"$bin" http predict --gateway "$url" --x "$data/test/X_test.csv" --y "$data/test/y_test.csv"
echo "stopping the cluster"
