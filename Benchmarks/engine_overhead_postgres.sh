#!/usr/bin/env bash
# Engine overhead on the PostgreSQL store: starts a throwaway PostgreSQL 15 cluster on a free loopback port
# (fsync off, as the tests run it; synchronous_commit on), runs the EngineOverhead benchmark against it (a fresh
# database per repetition), then stops and removes the cluster. Release build.
#
#   Benchmarks/engine_overhead_postgres.sh [--quick] [--lengths 10,1000]
#   ENGINE_OVERHEAD="/tmp/old/EngineOverhead .build/release/EngineOverhead" Benchmarks/engine_overhead_postgres.sh --quick
#       (built binaries, each in turn against the same server)
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/throwaway_postgres.sh
if [[ -n "${ENGINE_OVERHEAD:-}" ]]; then
    # Built binaries, one after the other against the same server (an A/B comparison): ENGINE_OVERHEAD="OLD NEW".
    for binary in $ENGINE_OVERHEAD; do
        echo "== $binary"
        "$binary" "$@" --postgres "$url"
    done
else
    swift run -c release EngineOverhead "$@" --postgres "$url"
fi
