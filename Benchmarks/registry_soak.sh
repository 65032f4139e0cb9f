#!/usr/bin/env bash
# The registry soak (Benchmarks/RegistrySoak): 16 writers for 60 s mixing runs, when_blessed registrations, manual
# promotions and rollbacks and gc, on SQLite and then on a throwaway PostgreSQL server; prints operations per second
# and the invariant checks (exit 1 when any invariant broke). Release build.
#
#   Benchmarks/registry_soak.sh [--seconds 60] [--writers 16]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product RegistrySoak
source Benchmarks/throwaway_postgres.sh
status=0
.build/release/RegistrySoak --sqlite "$@" || status=1
echo
.build/release/RegistrySoak --postgres "$url" "$@" || status=1
exit $status
