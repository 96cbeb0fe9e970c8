package policies

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// no-privilege-escalation requires every container (init, regular and ephemeral) to set
// securityContext.allowPrivilegeEscalation: false and not to set privileged: true.
//
// allowPrivilegeEscalation has no pod-level field and unset means true (the kernel's
// no_new_privs flag stays off), so an unset value is a violation at the container's field,
// like an explicit true. privileged: true is forbidden outright.
//
// The fix sets allowPrivilegeEscalation: false where it is unset. It never flips an explicit
// true and never touches privileged. It also backs off from a container that is privileged
// or adds CAP_SYS_ADMIN: the API server refuses allowPrivilegeEscalation: false together with
// either, so setting it would turn a policy violation into an invalid object.
//
// Windows pods (spec.os.name: windows) are skipped: the API server refuses both fields there.
func noPrivilegeEscalation(cfg Settings) Policy {
	return Policy{
		Fields: []string{
			"{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.privileged",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			if windowsPod(w) {
				return nil
			}
			var errs field.ErrorList
			for _, c := range w.Containers() {
				sc := c.SecurityContext
				var ape, priv *bool
				if sc != nil {
					ape, priv = sc.AllowPrivilegeEscalation, sc.Privileged
				}
				switch {
				case ape == nil:
					errs = append(errs, field.Required(c.Path.Child("securityContext", "allowPrivilegeEscalation"),
						containerPhrase(c.Name)+" must set allowPrivilegeEscalation: false (unset means true)"))
				case *ape:
					errs = append(errs, field.Invalid(c.Path.Child("securityContext", "allowPrivilegeEscalation"), true,
						containerPhrase(c.Name)+" must not allow privilege escalation: set allowPrivilegeEscalation to false"))
				}
				if isTrue(priv) {
					errs = append(errs, field.Forbidden(c.Path.Child("securityContext", "privileged"),
						containerPhrase(c.Name)+" must not run privileged"))
				}
			}
			return errs
		},
		// Cleared (Linux pods only): every container sets allowPrivilegeEscalation: false and
		// is not privileged; the fix then finds nothing unset.
		Clear: func(t celTemplate) (clearance, bool) {
			return clearance{Containers: []string{
				"sc.?allowPrivilegeEscalation.orValue(true) == false",
				"sc.?privileged.orValue(false) != true",
			}, Cost: uint64(celMaxContainers) * 100}, true
		},
		// No fix: every container sets allowPrivilegeEscalation, to any value.
		NoFix: func(t celTemplate) (clearance, bool) {
			return clearance{Containers: []string{"sc.?allowPrivilegeEscalation.hasValue()"}, Cost: uint64(celMaxContainers) * 50}, true
		},
		Fix: func(w *Workload) bool {
			if windowsPod(w) {
				return false
			}
			changed := false
			for _, c := range w.Containers() {
				if sc := c.SecurityContext; sc != nil && (sc.AllowPrivilegeEscalation != nil || isTrue(sc.Privileged) || addsSysAdmin(sc.Capabilities)) {
					continue
				}
				securityContext(c.Container, true).AllowPrivilegeEscalation = new(false)
				changed = true
			}
			return changed
		},
	}
}

// addsSysAdmin reports whether caps adds CAP_SYS_ADMIN, in any spelling the container
// runtime accepts (the API server's own check matches "CAP_SYS_ADMIN" only; backing off for
// every spelling is the safe side).
func addsSysAdmin(caps *corev1.Capabilities) bool {
	if caps == nil {
		return false
	}
	for _, a := range caps.Add {
		if strings.EqualFold(capabilityName(a), "SYS_ADMIN") {
			return true
		}
	}
	return false
}
