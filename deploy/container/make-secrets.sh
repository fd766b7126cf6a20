#!/usr/bin/env bash
# Writes CURVE key pairs for the master, the workers, the parameter servers and the gateway, the list of client keys the
# master admits, and a random gateway bearer token into deploy/container/secrets/ (or $1).
# The Kubernetes manifests read the same files from a Secret:
#   kubectl -n chimera create secret generic chimera-secrets --from-file=deploy/container/secrets/
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/secrets}
chimera=${CHIMERA:-chimera}
mkdir -p "$out"
for role in master worker server gateway; do
    "$chimera" keys --output "$out/$role"
done
cat "$out/worker.public" "$out/gateway.public" >"$out/allowed"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$out/gateway.token"
# The containers' unprivileged user must read the mounted files; the folder is git-ignored:
# keep it on this host only.
chmod 644 "$out"/*
echo "secrets in $out (token: $out/gateway.token)"
