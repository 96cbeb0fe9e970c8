//go:build tools

// Package tools records the Kubernetes control-plane main packages as
// dependencies of this module so that `go mod tidy` keeps them (and every
// module they need) in go.mod/go.sum. build.sh builds them directly with
// `go build <package path>`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
