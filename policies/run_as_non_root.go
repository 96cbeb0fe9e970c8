package policies

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// run-as-non-root requires every container (init, regular and ephemeral) to run as a
// non-root, numeric UID:
//
//   - the effective runAsNonRoot (the container's securityContext, else the pod's) is true;
//   - the effective runAsUser is set and is not 0.
//
// Both are required because Loom's image says `USER loom`: a name, which the kubelet cannot
// verify, so runAsNonRoot: true alone makes the kubelet refuse to start the container
// (LOOM.md, "image user"). The two settings are reported separately. An explicit container
// value is reported at the container's field; a missing or wrong value that containers
// inherit from the pod is reported once, at the pod's field, naming those containers.
//
// The fix acts when some container inherits an unset runAsNonRoot or runAsUser from the pod:
// it then sets, at pod level and only where unset, runAsNonRoot: true and runAsUser,
// runAsGroup and fsGroup from the config (Loom's UID/GID 1000, so that the volumes are
// writable by Loom's user too). A compliant pod is left alone. The fix never changes an
// explicit value: a pod or container that sets runAsNonRoot: false or runAsUser: 0 keeps it
// and keeps failing. A container that an exception waives and that must run as root needs
// those explicit values, since an exception waives a container's own fields, not the pod's.
//
// Windows pods (spec.os.name: windows) are out of scope and skipped by the check and the
// fix: runAsUser, runAsGroup and fsGroup are Linux-only, and the API server refuses them in
// a Windows pod.
func runAsNonRoot(cfg RunAsNonRootConfig) Policy {
	uid := strconv.FormatInt(cfg.RunAsUser, 10)
	setNonRoot := "set runAsNonRoot: true on the pod or on each container"
	setUID := "set runAsUser (such as " + uid + ") on the pod or on each container; the kubelet cannot verify a non-numeric image USER"
	return Policy{
		Fields: []string{
			"securityContext.runAsNonRoot",
			"securityContext.runAsUser",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			if windowsPod(w) {
				return nil
			}
			var podNonRoot *bool
			var podUser *int64
			if psc := w.Spec.SecurityContext; psc != nil {
				podNonRoot, podUser = psc.RunAsNonRoot, psc.RunAsUser
			}
			var errs field.ErrorList
			var inheritNonRoot, inheritUser []string
			for _, c := range w.Containers() {
				var nonRoot *bool
				var user *int64
				if sc := c.SecurityContext; sc != nil {
					nonRoot, user = sc.RunAsNonRoot, sc.RunAsUser
				}
				switch {
				case isFalse(nonRoot):
					errs = append(errs, field.Invalid(c.Path.Child("securityContext", "runAsNonRoot"), false,
						containerPhrase(c.Name)+" must run as non-root: set runAsNonRoot to true"))
				case nonRoot == nil && !isTrue(podNonRoot):
					inheritNonRoot = append(inheritNonRoot, c.Name)
				}
				switch {
				case user != nil && *user == 0:
					errs = append(errs, field.Invalid(c.Path.Child("securityContext", "runAsUser"), *user,
						containerPhrase(c.Name)+" must not run as root (UID 0): set runAsUser to a non-zero UID such as "+uid))
				case user == nil && (podUser == nil || *podUser == 0):
					inheritUser = append(inheritUser, c.Name)
				}
			}
			if len(inheritNonRoot) > 0 {
				p := w.SpecPath.Child("securityContext", "runAsNonRoot")
				if podNonRoot == nil {
					errs = append(errs, field.Required(p, containersPhrase(inheritNonRoot)+" must run as non-root: "+setNonRoot))
				} else {
					errs = append(errs, field.Invalid(p, false,
						containersPhrase(inheritNonRoot)+" must run as non-root but the pod sets runAsNonRoot: false; "+setNonRoot))
				}
			}
			if len(inheritUser) > 0 {
				p := w.SpecPath.Child("securityContext", "runAsUser")
				if podUser == nil {
					errs = append(errs, field.Required(p, containersPhrase(inheritUser)+" must run as a numeric non-zero UID: "+setUID))
				} else {
					errs = append(errs, field.Invalid(p, *podUser,
						containersPhrase(inheritUser)+" must not run as root but the pod sets runAsUser: 0; set a non-zero UID such as "+uid+" on the pod or on each container"))
				}
			}
			return errs
		},
		Fix: func(w *Workload) bool {
			if windowsPod(w) || !inheritsUnsetIdentity(w) {
				return false
			}
			psc := w.podSecurityContext(true)
			changed := false
			if psc.RunAsNonRoot == nil {
				psc.RunAsNonRoot, changed = new(true), true
			}
			if psc.RunAsUser == nil {
				psc.RunAsUser, changed = new(cfg.RunAsUser), true
			}
			if psc.RunAsGroup == nil {
				psc.RunAsGroup, changed = new(cfg.RunAsGroup), true
			}
			if psc.FSGroup == nil {
				psc.FSGroup, changed = new(cfg.FSGroup), true
			}
			return changed
		},
	}
}

// inheritsUnsetIdentity reports whether a container inherits an unset runAsNonRoot or
// runAsUser from the pod: the case the fix repairs.
func inheritsUnsetIdentity(w *Workload) bool {
	psc := w.Spec.SecurityContext
	podNonRoot, podUser := psc != nil && psc.RunAsNonRoot != nil, psc != nil && psc.RunAsUser != nil
	for _, c := range w.Containers() {
		sc := c.SecurityContext
		if (!podNonRoot && (sc == nil || sc.RunAsNonRoot == nil)) || (!podUser && (sc == nil || sc.RunAsUser == nil)) {
			return true
		}
	}
	return false
}

// RunAsNonRootConfig configures run-as-non-root.
type RunAsNonRootConfig struct {
	Settings `json:",inline"`
	// RunAsUser, RunAsGroup and FSGroup are set at pod level where unset.
	RunAsUser  int64 `json:"runAsUser,omitempty"`
	RunAsGroup int64 `json:"runAsGroup,omitempty"`
	FSGroup    int64 `json:"fsGroup,omitempty"`
}

// Default sets UID, GID and fsGroup 1000.
func (c *RunAsNonRootConfig) Default() {
	c.RunAsUser, c.RunAsGroup, c.FSGroup = 1000, 1000, 1000
}

// Validate requires positive, non-root IDs.
func (c *RunAsNonRootConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, id := range []struct {
		name string
		v    int64
	}{{"runAsUser", c.RunAsUser}, {"runAsGroup", c.RunAsGroup}, {"fsGroup", c.FSGroup}} {
		if id.v <= 0 {
			errs = append(errs, field.Invalid(fldPath.Child(id.name), id.v, "must be a positive, non-root ID"))
		}
	}
	return errs
}
