#!/usr/bin/env bash
# Fails when the repository tracks a build output: a file over 1 MiB, or an
# executable binary (ELF, Mach-O, PE, or any file git sees as binary with an
# executable bit). Run by `make lint`; nothing built or generated is committed.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

limit=$((1024 * 1024))
fail=0
declare -A flagged=()
while IFS= read -r -d '' f; do
  [[ -f "$f" && ! -L "$f" ]] || continue
  size=$(stat -c %s -- "$f")
  if (( size > limit )); then
    echo "tracked file over 1 MiB: $f ($size bytes)"
    fail=1
  fi
  magic=$(head -c 4 -- "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46) echo "tracked ELF binary: $f"; flagged[$f]=1; fail=1; continue ;;
    feedface|feedfacf|cefaedfe|cffaedfe|cafebabe) echo "tracked Mach-O binary: $f"; flagged[$f]=1; fail=1; continue ;;
  esac
  if [[ "${magic:0:4}" == 4d5a ]]; then
    echo "tracked PE binary: $f"; flagged[$f]=1; fail=1; continue
  fi
done < <(git ls-files -z)
# Any tracked file with the executable bit that git cannot diff as text.
while IFS= read -r line; do
  mode=${line%% *}
  f=${line#*$'\t'}
  [[ "$mode" == 100755 && -z "${flagged[$f]:-}" ]] || continue
  if [[ "$(git diff --no-index --numstat /dev/null -- "$f" 2>/dev/null | cut -f1)" == "-" ]]; then
    echo "tracked executable binary: $f"
    fail=1
  fi
done < <(git ls-files -s)
exit "$fail"
