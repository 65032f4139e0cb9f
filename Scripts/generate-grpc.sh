#!/usr/bin/env bash
# Regenerates Sources/SluiceServerGRPC/Generated from Protos/inference.proto. The output is committed, so a build
# never runs protoc: run this only after changing the .proto, and commit what it writes.
#
# It builds the two protoc plugins (swift-protobuf's and grpc-swift-protobuf's, at the versions Package.swift
# resolves) in a scratch package under .build/protoc-plugins, and installs protoc from Debian when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

protobuf_version=1.39.0
grpc_protobuf_version=2.4.1
plugins=.build/protoc-plugins
output=Sources/SluiceServerGRPC/Generated

if ! command -v protoc > /dev/null; then
    echo "installing protoc (Debian's protobuf-compiler)…" >&2
    apt-get install -y -qq protobuf-compiler > /dev/null || {
        echo "error: protoc is missing and apt could not install protobuf-compiler; install it and run again" >&2
        exit 1
    }
fi

mkdir -p "$plugins"
cat > "$plugins/Package.swift" << SWIFT
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "$protobuf_version"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "$grpc_protobuf_version"),
    ],
    targets: []
)
SWIFT
echo "building the protoc plugins (a few minutes the first time)…" >&2
(cd "$plugins" && swift build -c release --product protoc-gen-swift > /dev/null \
    && swift build -c release --product protoc-gen-grpc-swift-2 > /dev/null)
bin="$plugins/.build/release"

mkdir -p "$output"
rm -f "$output"/*.swift
protoc --proto_path=Protos \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$output" --swift_opt=Visibility=Package \
    --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift_out="$output" --grpc-swift_opt=Visibility=Package,Server=true,Client=true \
    inference.proto
# In the repository's style, so `.ci/run`'s lint passes on generated code too.
swift format -i "$output"/*.swift
echo "wrote $(ls "$output" | tr '\n' ' ')" >&2
