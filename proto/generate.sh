#!/usr/bin/env bash
# Regenerates the Swift code for proto/chimera/v1/*.proto into Sources/ChimeraWire/Generated.
#
#   proto/generate.sh           regenerate (commit the result)
#   proto/generate.sh --check   regenerate into a scratch folder and fail if the committed code differs
#
# Needs Debian's protobuf-compiler (protoc). protoc-gen-swift is built from the swift-protobuf
# version this package resolves, into .build-protoc/ (about a minute on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=${1:-generate}
command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }

swift package resolve >/dev/null
plugin_src=.build/checkouts/swift-protobuf
[ -d "$plugin_src" ] || { echo "swift-protobuf checkout not found under .build/checkouts" >&2; exit 1; }
swift build -c release --package-path "$plugin_src" --scratch-path .build-protoc --product protoc-gen-swift >&2
plugin=.build-protoc/release/protoc-gen-swift

out=Sources/ChimeraWire/Generated
target=$out
if [ "$mode" = "--check" ]; then target=$(mktemp -d); trap 'rm -rf "$target"' EXIT; fi

protos=$(cd proto && find chimera -name '*.proto' | sort)
(cd proto && protoc --plugin=protoc-gen-swift="../$plugin" \
    --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
    --swift_out="$(cd .. && cd "$target" && pwd)" $protos)
# The stamp lets the fast test suite notice a .proto edited without regenerating.
(cd proto && sha256sum $protos) >"$target/proto.sha256"

if [ "$mode" = "--check" ]; then
    if diff -r "$out" "$target" >/dev/null; then
        echo "generated protobuf code matches proto/"
    else
        diff -r "$out" "$target" | head -40 >&2
        echo "generated code is stale: run proto/generate.sh and commit the result" >&2
        exit 1
    fi
else
    echo "generated into $out"
fi
