#!/usr/bin/env bash
# Installs the `sluice` command line: a release build with the Swift runtime linked in (so it runs without the
# toolchain), `sluice-step` beside it (the step processes of the process and Slurm orchestrators: the same commands
# without the serving ones, so each starts faster), shell completions for bash, zsh and fish, and the manual page.
#
# Usage: Scripts/install.sh [--prefix DIR] [--configuration release|debug] [--binary PATH]
#   --prefix DIR      where to install (default: /usr/local as root, ~/.local otherwise): DIR/bin/sluice,
#                     DIR/share/man/man1/sluice.1, DIR/share/{bash-completion/completions,zsh/site-functions,
#                     fish/vendor_completions.d}
#   --configuration   release (default; ~8 minutes on 2 cores the first time) or debug
#   --binary PATH     install this already built sluice (and the sluice-step beside it, when there is one) instead
#                     of building them (packagers, the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=""
configuration="release"
binary=""
while (($#)); do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        --configuration) configuration="${2:?--configuration needs release or debug}"; shift 2 ;;
        --binary) binary="${2:?--binary needs the path of a built sluice}"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option '$1'. To fix: see Scripts/install.sh --help." >&2; exit 2 ;;
    esac
done
case "$configuration" in
    release|debug) ;;
    *) echo "error: --configuration is release or debug, not '$configuration'." >&2; exit 2 ;;
esac
if [[ -z "$prefix" ]]; then
    if [[ $(id -u) -eq 0 ]]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi

if [[ -z "$binary" ]]; then
    flags=(-c "$configuration" --product sluice)
    # A release build starts fast (Scripts/step-binary-flags.sh): the Swift runtime, Foundation, SQLite, zlib and
    # the C++ runtime linked in, a fixed load address and no exported symbols. Each step run of the process and
    # Slurm orchestrators starts it once. Its own build folder: these flags rebuild everything, and would make
    # every other release build start over.
    if [[ "$configuration" == release ]]; then
        read -r -a fast <<< "$(Scripts/step-binary-flags.sh .build/static-libs)"
        flags+=("${fast[@]}" --scratch-path .build/install)
    fi
    echo "building sluice ($configuration)…" >&2
    swift build "${flags[@]}" >&2
    step_flags=("${flags[@]}")
    step_flags[2]=sluice-step
    swift build "${step_flags[@]}" >&2
    binary="$(swift build "${flags[@]}" --show-bin-path)/sluice"
elif [[ ! -x "$binary" ]]; then
    echo "error: $binary is not an executable. To fix: build it first (swift build --product sluice)." >&2
    exit 2
fi

install -d "$prefix/bin" "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
install -m 0755 "$binary" "$prefix/bin/sluice"
installed="$prefix/bin/sluice"
step="$(dirname "$binary")/sluice-step"
if [[ -x "$step" ]]; then
    install -m 0755 "$step" "$prefix/bin/sluice-step"
else
    rm -f "$prefix/bin/sluice-step"  # an older one would run steps of another version
    echo "  note: no sluice-step beside $binary: steps of the process and Slurm orchestrators start sluice itself." >&2
fi
"$installed" --generate-completion-script bash > "$prefix/share/bash-completion/completions/sluice"
"$installed" --generate-completion-script zsh > "$prefix/share/zsh/site-functions/_sluice"
"$installed" --generate-completion-script fish > "$prefix/share/fish/vendor_completions.d/sluice.fish"
"$installed" manual > "$prefix/share/man/man1/sluice.1"

echo "installed $("$installed" --version) at $installed" >&2
echo "  manual: man -M $prefix/share/man sluice   completions: bash, zsh, fish under $prefix/share" >&2
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "  note: $prefix/bin is not on your PATH: add it (export PATH=\"$prefix/bin:\$PATH\")." >&2 ;;
esac
