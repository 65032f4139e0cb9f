#!/usr/bin/env bash
# MLflow's client against MLflow's tracking server and Sluice's (SQLite and PostgreSQL), in one run:
# log_metric calls/s, log_batch points/s, and a filtered, ordered search over 100,000 runs (Benchmarks/tracking.py).
# Usage: Benchmarks/tracking.sh [--runs N] [--repeat R]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sluice >/dev/null
source Benchmarks/throwaway_postgres.sh
python3 Benchmarks/tracking.py --sluice "$(swift build -c release --show-bin-path)/sluice" --postgres-url "$url" "$@"
