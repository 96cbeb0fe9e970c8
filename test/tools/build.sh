#!/usr/bin/env bash
# Builds the real Kubernetes control-plane binaries used by the e2e/integration
# harness from Go modules pinned in test/tools/go.mod:
#
#   bin/etcd                     go.etcd.io/etcd/server/v3 (via ./cmd/etcd)
#   bin/kube-apiserver           k8s.io/kubernetes/cmd/kube-apiserver
#   bin/kube-controller-manager  k8s.io/kubernetes/cmd/kube-controller-manager
#   bin/kubectl                  k8s.io/kubernetes/cmd/kubectl
#
# The flags mirror kubernetes' own release build (hack/lib/golang.sh,
# hack/lib/version.sh): CGO_ENABLED=0, -trimpath, -s -w,
# -tags selinux,notest,grpcnotrace, and -X version ldflags so that the
# binaries report the real version (v1.37.2) instead of v0.0.0-master.
#
# A cold build takes ~15 min on 2 cores. The build is skipped when
# bin/.tools-stamp matches the current inputs and all four binaries exist.
#
# Environment:
#   TOOLS_BIN_DIR  output directory (default: <repo root>/bin)
#   TOOLS_FORCE=1  rebuild even if the stamp matches
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${tools_dir}/../.." && pwd)"
bin_dir="${TOOLS_BIN_DIR:-${repo_root}/bin}"
stamp_file="${bin_dir}/.tools-stamp"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)
packages=(
  ./cmd/etcd
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kubectl
)

cd "${tools_dir}"
# Always build this module on its own, whatever go.work or GOFLAGS say.
export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

mkdir -p "${bin_dir}"

# Serialise concurrent invocations (e.g. parallel test packages).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${bin_dir}/.tools-lock"
  flock 9
fi

compute_stamp() {
  {
    go version
    # build.sh, go.mod, go.sum, tools.go and every source under cmd/.
    find build.sh go.mod go.sum tools.go cmd -type f | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
}

want_stamp="$(compute_stamp)"

if [[ "${TOOLS_FORCE:-0}" != 1 && -f "${stamp_file}" ]] \
  && [[ "$(cat "${stamp_file}")" == "${want_stamp}" ]]; then
  all_present=1
  for b in "${binaries[@]}"; do
    [[ -x "${bin_dir}/${b}" ]] || all_present=0
  done
  if [[ ${all_present} == 1 ]]; then
    echo "tools up to date"
    exit 0
  fi
fi

rm -f "${stamp_file}"

# Version metadata, derived from the pinned module (not hard-coded) so a bump
# of k8s.io/kubernetes in go.mod is reflected automatically. The build date is
# the module's tag time from the proxy, which keeps the binaries reproducible.
kube_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kube_build_date="$(go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
kube_build_date="${kube_build_date:-1970-01-01T00:00:00Z}"
if [[ ! "${kube_version}" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "unexpected k8s.io/kubernetes version: ${kube_version}" >&2
  exit 1
fi
kube_major="${BASH_REMATCH[1]}"
kube_minor="${BASH_REMATCH[2]}"

# Same variables hack/lib/version.sh sets, for both copies of the version
# package. The module zip carries no git commit, so gitCommit is left empty
# rather than the "$Format:%H$" placeholder.
ldflags=()
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=(
    "-X ${pkg}.gitVersion=${kube_version}"
    "-X ${pkg}.gitMajor=${kube_major}"
    "-X ${pkg}.gitMinor=${kube_minor}"
    "-X ${pkg}.gitCommit="
    "-X ${pkg}.gitTreeState=clean"
    "-X ${pkg}.buildDate=${kube_build_date}"
  )
done

echo "downloading modules..."
t0=${SECONDS}
go mod download
echo "modules ready in $((SECONDS - t0))s"

echo "building ${binaries[*]} (kubernetes ${kube_version}) into ${bin_dir}/ ..."
t0=${SECONDS}
CGO_ENABLED=0 go build \
  -trimpath \
  -tags selinux,notest,grpcnotrace \
  -ldflags "all=${ldflags[*]} -s -w" \
  -o "${bin_dir}/" \
  "${packages[@]}"
echo "built in $((SECONDS - t0))s"

for b in "${binaries[@]}"; do
  if [[ ! -x "${bin_dir}/${b}" ]]; then
    echo "missing ${bin_dir}/${b} after build" >&2
    exit 1
  fi
done

echo "${want_stamp}" > "${stamp_file}"
