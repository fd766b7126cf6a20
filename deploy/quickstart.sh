#!/usr/bin/env bash
# The README's main command: installs what is missing, builds in release mode and runs the main job.
# Until the training issues land, the main job is `chimera demo`: a master-like ROUTER/PUB and worker
# processes exchanging weights and gradients as tensor frames, printing what it measured.
# Extra arguments go to `chimera demo` (e.g. --workers 4 --floats 1000000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
swift build -c release --product chimera
exec .build/release/chimera demo "$@"
