#!/usr/bin/env bash
# Builds bin/gator, Gatekeeper's CLI (github.com/open-policy-agent/gatekeeper/v3,
# pinned in go.mod here), for `make bench-peers`. A module of its own, so that
# Gatekeeper's dependencies (OPA, its own Kubernetes versions) never change the
# build list of loomguard or of the control-plane tools in ../tools.
#
# The flags mirror Gatekeeper's own `make gator` (its Makefile): CGO_ENABLED=0 and
# -X .../pkg/version.Version, plus -trimpath -s -w. The build runs under `nice`:
# it is heavy (≈ 1,000 packages) and only the benchmark needs it.
#
# Skipped when bin/.gator-stamp matches the current inputs and bin/gator exists.
#
# Environment:
#   TOOLS_BIN_DIR  output directory (default: <repo root>/bin)
#   TOOLS_FORCE=1  rebuild even if the stamp matches
set -euo pipefail

peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${peers_dir}/../.." && pwd)"
bin_dir="${TOOLS_BIN_DIR:-${repo_root}/bin}"
bin_dir="$(mkdir -p "${bin_dir}" && cd "${bin_dir}" && pwd)"
stamp_file="${bin_dir}/.gator-stamp"

cd "${peers_dir}"
export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

if command -v flock >/dev/null 2>&1; then
  exec 9>"${bin_dir}/.gator-lock"
  flock 9
fi

compute_stamp() {
  {
    go version
    sha256sum build.sh go.mod go.sum tools.go
  } | sha256sum | cut -d' ' -f1
}

want_stamp="$(compute_stamp)"
if [[ "${TOOLS_FORCE:-0}" != 1 && -f "${stamp_file}" && -x "${bin_dir}/gator" ]] \
  && [[ "$(cat "${stamp_file}")" == "${want_stamp}" ]]; then
  echo "gator up to date"
  exit 0
fi
rm -f "${stamp_file}"

gk_version="$(go list -m -f '{{.Version}}' github.com/open-policy-agent/gatekeeper/v3)"
echo "building gator ${gk_version} into ${bin_dir} (cold on 2 cores: several minutes)"
CGO_ENABLED=0 nice -n 10 go build -trimpath \
  -ldflags "-s -w -X github.com/open-policy-agent/gatekeeper/v3/pkg/version.Version=${gk_version}" \
  -o "${bin_dir}/gator" github.com/open-policy-agent/gatekeeper/v3/cmd/gator
echo "${want_stamp}" > "${stamp_file}"
"${bin_dir}/gator" --version | tail -n 1
