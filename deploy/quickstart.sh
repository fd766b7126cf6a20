#!/usr/bin/env bash
# The README's main command: installs what is missing, builds in release mode, then trains for real:
# a master and 4 worker processes on 127.0.0.1 (OS-chosen ports) over the committed breast-cancer data,
# a BSP logistic-regression fit, held-out predictions with accuracy and timings, and a clean stop.
# Extra arguments go to `chimera fit` (e.g. --iterations 500 --staleness 2 --model svm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
swift build -c release --product chimera
bin=.build/release/chimera
data=deploy/data/breast-cancer
run=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT INT TERM

"$bin" master --port 0 --model-dir "$run/model" >"$run/master.out" 2>"$run/master.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^chimera-master ' "$run/master.out" 2>/dev/null && break; sleep 0.1; done
workers=$(sed -n 's/.* workers=\([^ ]*\).*/\1/p' "$run/master.out")
control=$(sed -n 's/.* control=\([^ ]*\).*/\1/p' "$run/master.out")
[ -n "$control" ] || { cat "$run/master.log" >&2; echo "the master did not start" >&2; exit 1; }
echo "master: workers $workers, control $control"

for shard in "$data"/worker-*; do
    "$bin" worker --master "$workers" --data "$shard" --parent $$ 2>>"$run/workers.log" &
    pids+=($!)
done

echo "fitting logistic regression on $(ls -d "$data"/worker-* | wc -l) workers…"
"$bin" fit --master "$control" --wait-workers 4 --iterations 200 --eta0 0.5 "$@"
echo "predicting the held-out rows…"
"$bin" predict --master "$control" --x "$data/test/X_test.csv" --y "$data/test/y_test.csv"
