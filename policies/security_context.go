package policies

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Helpers shared by the security-context policies (run-as-non-root, no-privilege-escalation,
// drop-all-capabilities, read-only-root-filesystem, writable-paths, seccomp-profile).
//
// A container's securityContext setting overrides the pod's. When the effective value comes
// from the pod and is wrong, the policies report one error at the pod-level field naming every
// container that inherits it (collected in container order), and report explicit container
// values at the container's own field.

// windowsPod reports whether the pod declares spec.os.name: windows. The API server forbids
// the Linux-only security settings (runAsUser, runAsGroup, fsGroup, seccompProfile,
// capabilities, privileged, allowPrivilegeEscalation, readOnlyRootFilesystem) in such a pod,
// so the policies that require them skip it, as the Pod Security Standards do: requiring a
// field that the API server refuses would make every Windows pod impossible to admit.
func windowsPod(w *Workload) bool {
	return w.Spec.OS != nil && w.Spec.OS.Name == corev1.Windows
}

// isTrue reports whether b is set and true.
func isTrue(b *bool) bool { return b != nil && *b }

// isFalse reports whether b is set and false.
func isFalse(b *bool) bool { return b != nil && !*b }

// containersPhrase renders names as `container "a"` or `containers "a", "b"`.
func containersPhrase(names []string) string {
	var b strings.Builder
	if len(names) == 1 {
		b.WriteString("container ")
	} else {
		b.WriteString("containers ")
	}
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n))
	}
	return b.String()
}

// containerPhrase renders one name as `container "a"`.
func containerPhrase(name string) string {
	return "container " + strconv.Quote(name)
}

// quotedList renders values as `"a", "b" or "c"`, for details listing the accepted values.
func quotedList(values []string) string {
	var b strings.Builder
	for i, v := range values {
		switch {
		case i == 0:
		case i == len(values)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(v))
	}
	return b.String()
}
