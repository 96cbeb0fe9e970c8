//go:build tools

// Package peers pins the peer tools that `make bench-peers` builds; see build.sh.
package peers

import _ "github.com/open-policy-agent/gatekeeper/v3/cmd/gator"
