package policies

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// run-as-non-root requires every container (init, regular and ephemeral) to run as a
// non-root, numeric UID (on Linux; see below for Windows):
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
// Windows pods (spec.os.name: windows) have no numeric UID: the API server refuses
// runAsUser, runAsGroup and fsGroup there (ValidatePodSpec's validateWindows in
// k8s.io/kubernetes pkg/apis/core/validation). For them the policy requires the effective
// runAsNonRoot to be true, as Pod Security Admission's restricted runAsNonRoot check does (it
// has no OS exemption), and the effective windowsOptions.runAsUserName (the container's, else
// the pod's) not to be ContainerAdministrator, compared case-insensitively: the Windows
// kubelet treats that account as root and refuses to start it under runAsNonRoot
// (verifyRunAsNonRoot in pkg/kubelet/kuberuntime/security_context_windows.go). The fix of a
// Windows pod sets only the pod's runAsNonRoot: true, when some container inherits it unset;
// it never sets a Linux-only field, and never changes a runAsUserName.
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
			"securityContext.windowsOptions.runAsUserName",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.windowsOptions.runAsUserName",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			windows := windowsPod(w)
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
				if windows {
					continue // no numeric UID: the user is checked below, by name
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
			if windows {
				errs = windowsAdministrator(errs, w)
			}
			return errs
		},
		// Cleared (Linux pods only): each container's effective runAsNonRoot is true and its
		// effective runAsUser set and not 0; the fix then finds nothing unset.
		Clear: func(t celTemplate) (clearance, bool) {
			nonRoot := "sc.?runAsNonRoot.orValue(" + t.PodSC + ".?runAsNonRoot.orValue(false))"
			user := "sc.?runAsUser.orValue(" + t.PodSC + ".?runAsUser.orValue(0))"
			return clearance{Containers: []string{nonRoot + " == true", "type(" + user + ") == int", user + " != 0"}, Cost: uint64(celMaxContainers) * 200}, true
		},
		// No fix: no container inherits an unset runAsNonRoot or runAsUser
		// (inheritsUnsetIdentity), whatever their values.
		NoFix: func(t celTemplate) (clearance, bool) {
			set := func(f string) string {
				return "(" + t.PodSC + ".?" + f + ".hasValue() || sc.?" + f + ".hasValue())"
			}
			return clearance{Containers: []string{set("runAsNonRoot") + " && " + set("runAsUser")}, Cost: uint64(celMaxContainers) * 100}, true
		},
		Fix: func(w *Workload) bool {
			windows := windowsPod(w)
			if !inheritsUnsetIdentity(w, windows) {
				return false
			}
			psc := w.podSecurityContext(true)
			changed := false
			if psc.RunAsNonRoot == nil {
				psc.RunAsNonRoot, changed = new(true), true
			}
			if windows {
				return changed
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

// windowsRootUserName is the account the Windows kubelet treats as root (compared
// case-insensitively), after pkg/kubelet/kuberuntime/security_context_windows.go.
const windowsRootUserName = "ContainerAdministrator"

// windowsAdministrator appends a violation for each container of a Windows pod whose
// effective runAsUserName is the administrator: at the container's field when it sets it,
// else once at the pod's field naming the containers that inherit it.
func windowsAdministrator(errs field.ErrorList, w *Workload) field.ErrorList {
	var podUser *string
	if psc := w.Spec.SecurityContext; psc != nil && psc.WindowsOptions != nil {
		podUser = psc.WindowsOptions.RunAsUserName
	}
	var inherit []string
	for _, c := range w.Containers() {
		var user *string
		if sc := c.SecurityContext; sc != nil && sc.WindowsOptions != nil {
			user = sc.WindowsOptions.RunAsUserName
		}
		switch {
		case user != nil && strings.EqualFold(*user, windowsRootUserName):
			errs = append(errs, field.Invalid(c.Path.Child("securityContext", "windowsOptions", "runAsUserName"), *user,
				containerPhrase(c.Name)+" must not run as the Windows administrator "+strconv.Quote(*user)+": set runAsUserName to a non-administrator account such as ContainerUser"))
		case user == nil && podUser != nil && strings.EqualFold(*podUser, windowsRootUserName):
			inherit = append(inherit, c.Name)
		}
	}
	if len(inherit) > 0 {
		errs = append(errs, field.Invalid(w.SpecPath.Child("securityContext", "windowsOptions", "runAsUserName"), *podUser,
			containersPhrase(inherit)+" must not run as the Windows administrator "+strconv.Quote(*podUser)+
				": set runAsUserName to a non-administrator account such as ContainerUser"))
	}
	return errs
}

// inheritsUnsetIdentity reports whether a container inherits an unset runAsNonRoot or
// runAsUser (not on Windows, which has no UID) from the pod: the case the fix repairs.
func inheritsUnsetIdentity(w *Workload, windows bool) bool {
	psc := w.Spec.SecurityContext
	podNonRoot, podUser := psc != nil && psc.RunAsNonRoot != nil, windows || (psc != nil && psc.RunAsUser != nil)
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
