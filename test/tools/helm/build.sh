#!/usr/bin/env bash
# Builds bin/helm (helm.sh/helm/v3, pinned in test/tools/helm/go.mod) for the
# deployment tests: `helm template` renders manifests/helm/loomguard. A module of
# its own, next to ../go.mod, so that helm's dependencies never change the build
# list of the Kubernetes binaries (see ../README.md).
#
# The flags mirror helm's own release build (its Makefile): CGO_ENABLED=0,
# -trimpath, -s -w, and -X flags for helm's version and for the Kubernetes version
# that `helm template` assumes (derived from the k8s.io/client-go version pinned
# here: v0.37.2 -> 1.37).
#
# Skipped when bin/.helm-stamp matches the current inputs and bin/helm exists.
#
# Environment:
#   TOOLS_BIN_DIR  output directory (default: <repo root>/bin)
#   TOOLS_FORCE=1  rebuild even if the stamp matches
set -euo pipefail

helm_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${helm_dir}/../../.." && pwd)"
bin_dir="${TOOLS_BIN_DIR:-${repo_root}/bin}"
bin_dir="$(mkdir -p "${bin_dir}" && cd "${bin_dir}" && pwd)"
stamp_file="${bin_dir}/.helm-stamp"

cd "${helm_dir}"
export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

if command -v flock >/dev/null 2>&1; then
  exec 9>"${bin_dir}/.helm-lock"
  flock 9
fi

compute_stamp() {
  {
    go version
    find build.sh go.mod go.sum tools.go -type f | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
}

want_stamp="$(compute_stamp)"
if [[ "${TOOLS_FORCE:-0}" != 1 && -f "${stamp_file}" && -x "${bin_dir}/helm" ]] \
  && [[ "$(cat "${stamp_file}")" == "${want_stamp}" ]]; then
  echo "helm up to date"
  exit 0
fi
rm -f "${stamp_file}"

helm_version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/client-go)"
if [[ ! "${k8s_version}" =~ ^v0\.([0-9]+)\.[0-9]+$ ]]; then
  echo "unexpected k8s.io/client-go version: ${k8s_version}" >&2
  exit 1
fi
k8s_minor="${BASH_REMATCH[1]}"
ldflags=(
  "-s" "-w"
  "-X helm.sh/helm/v3/internal/version.version=${helm_version}"
  "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
  "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${k8s_minor}"
  "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${k8s_minor}"
)

echo "downloading helm modules..."
t0=${SECONDS}
go mod download
echo "modules ready in $((SECONDS - t0))s"

echo "building helm ${helm_version} (Kubernetes libraries ${k8s_version}) into ${bin_dir}/ ..."
t0=${SECONDS}
CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags[*]}" -o "${bin_dir}/helm" helm.sh/helm/v3/cmd/helm
echo "built in $((SECONDS - t0))s"

"${bin_dir}/helm" version --short
echo "${want_stamp}" > "${stamp_file}"
