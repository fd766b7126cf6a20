#!/usr/bin/env bash
# Installs the system packages Chimera needs, only those that are missing (Debian/Ubuntu).
#   libzmq3-dev        libzmq headers and library (the transport)
#   libopenblas-dev    OpenBLAS's CBLAS (the matrix products of neural-network passes)
#   protobuf-compiler  only with --proto, to regenerate or check the generated protobuf code
#   python3-zmq python3-protobuf python3-numpy
#                      only with --python, for the example Python worker (proto/examples) and its tests
#   chromium           only with --browser, for the dashboard's tests in headless Chromium
#   iproute2           only with --testbed, for deploy/testbed/testbed.sh (ip netns, tc) and its tests
set -euo pipefail
packages=(libzmq3-dev libopenblas-dev)
for flag in "$@"; do
    case "$flag" in
    --proto) packages+=(protobuf-compiler) ;;
    --python) packages+=(protobuf-compiler python3-zmq python3-protobuf python3-numpy) ;;
    --browser) packages+=(chromium) ;;
    --testbed) packages+=(iproute2) ;;
    *) echo "install-deps.sh: unknown flag $flag (use --proto, --python, --browser, --testbed)" >&2; exit 2 ;;
    esac
done
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
