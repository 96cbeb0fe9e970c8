//go:build tools

// Package tools records helm's main package as a dependency of this module so that
// `go mod tidy` keeps it (and every module it needs) in go.mod/go.sum. build.sh builds it
// with `go build helm.sh/helm/v3/cmd/helm`.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
