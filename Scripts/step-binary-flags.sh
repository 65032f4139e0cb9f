#!/usr/bin/env bash
# Prints the `swift build` flags for an executable that starts fast: one the process and Slurm orchestrators start
# once per step run (`sluice`, or a pipeline executable made with `Sluice.main`).
#
# Usage: swift build -c release $(Scripts/step-binary-flags.sh [FOLDER]) --product NAME --scratch-path .build/lean
#   FOLDER  where to link the static C libraries from (default: .build/static-libs of the current folder)
#
# - The Swift runtime and Foundation are linked in (--static-swift-stdlib).
# - It is linked at a fixed address and exports no symbols: the dynamic loader has ~500 relocations to apply instead
#   of ~170,000, and no 70,000-symbol table to search.
# - SQLite, zlib and the C++ runtime are linked in from their static archives, when this machine has them (Debian:
#   libsqlite3-dev, zlib1g-dev, libstdc++-12-dev): the loader then maps two libraries (libc, libm) instead of six.
#   FOLDER holds links to just those archives, searched before the system's folders, which also hold the shared
#   ones. A missing archive is linked shared as before, with a note on standard error.
# These flags change every compile command: build in a scratch folder of its own, or every other release build
# starts over.
set -euo pipefail

folder="${1:-.build/static-libs}"
mkdir -p "$folder"
folder="$(cd "$folder" && pwd)"
multiarch="$(uname -m)-linux-gnu"
for library in sqlite3 z stdc++; do
    archive=""
    for candidate in "/usr/lib/$multiarch/lib$library.a" "/usr/lib/lib$library.a" \
        "$(clang -print-file-name="lib$library.a" 2>/dev/null || true)"; do
        if [[ "$candidate" == /* && -f "$candidate" ]]; then
            archive="$candidate"
            break
        fi
    done
    if [[ -n "$archive" ]]; then
        ln -sf "$archive" "$folder/lib$library.a"
    else
        rm -f "$folder/lib$library.a"
        echo "note: no static lib$library.a here; it stays a shared library (install its -dev package to link it in)." >&2
    fi
done
echo "--static-swift-stdlib -Xlinker --no-export-dynamic -Xlinker -no-pie -Xswiftc -L -Xswiftc $folder"
