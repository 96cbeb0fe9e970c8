package policies

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// seccomp-profile requires every container (init, regular and ephemeral) to run under a
// seccomp profile whose type is one of the config's allowedTypes (default RuntimeDefault and
// Localhost). The effective profile is the container's securityContext.seccompProfile, else
// the pod's. Unset (which the kubelet runs as Unconfined) and Unconfined are violations; a
// Localhost profile must name its file in localhostProfile.
//
// An explicit container profile is reported at the container's field. A missing or wrong
// profile that containers inherit from the pod is reported once, at the pod's
// securityContext.seccompProfile (its type or localhostProfile when the pod sets a wrong
// one), naming those containers.
//
// The fix sets the pod-level profile to {type: RuntimeDefault} when the pod has none and some
// container inherits it, and only if RuntimeDefault is allowed (it cannot invent a Localhost
// profile). It never changes an explicit profile, so an explicit Unconfined stays a violation.
//
// Windows pods (spec.os.name: windows) are skipped: the API server refuses seccompProfile there.
func seccompProfile(cfg SeccompProfileConfig) Policy {
	allowed := make([]corev1.SeccompProfileType, len(cfg.AllowedTypes))
	for i, t := range cfg.AllowedTypes {
		allowed[i] = corev1.SeccompProfileType(t)
	}
	fixable := slices.Contains(allowed, corev1.SeccompProfileTypeRuntimeDefault)
	setType := "set seccompProfile.type to " + quotedList(cfg.AllowedTypes)
	// problem returns the violation of an explicit profile, or nil. subject names the
	// containers; onPod says that they inherit the profile from the pod.
	problem := func(prof *corev1.SeccompProfile, p *field.Path, subject string, onPod bool) *field.Error {
		where, fix := "", setType
		if onPod {
			where, fix = " (set on the pod)", setType+" on the pod or on each container"
		}
		switch {
		case !slices.Contains(allowed, prof.Type):
			return field.Invalid(p.Child("type"), string(prof.Type),
				subject+" must not run with seccomp profile "+strconv.Quote(string(prof.Type))+where+"; "+fix)
		case prof.Type == corev1.SeccompProfileTypeLocalhost && (prof.LocalhostProfile == nil || *prof.LocalhostProfile == ""):
			return field.Required(p.Child("localhostProfile"),
				subject+" must run with a named Localhost seccomp profile"+where+": set localhostProfile to the profile's file")
		}
		return nil
	}
	return Policy{
		Fields: []string{
			"securityContext.seccompProfile",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			if windowsPod(w) {
				return nil
			}
			var pod *corev1.SeccompProfile
			if w.Spec.SecurityContext != nil {
				pod = w.Spec.SecurityContext.SeccompProfile
			}
			podOK := pod != nil && slices.Contains(allowed, pod.Type) &&
				(pod.Type != corev1.SeccompProfileTypeLocalhost || (pod.LocalhostProfile != nil && *pod.LocalhostProfile != ""))
			var errs field.ErrorList
			var inherit []string
			for _, c := range w.Containers() {
				if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
					if err := problem(c.SecurityContext.SeccompProfile, c.Path.Child("securityContext", "seccompProfile"), containerPhrase(c.Name), false); err != nil {
						errs = append(errs, err)
					}
					continue
				}
				if !podOK {
					inherit = append(inherit, c.Name)
				}
			}
			if len(inherit) > 0 {
				p := w.SpecPath.Child("securityContext", "seccompProfile")
				if pod == nil {
					errs = append(errs, field.Required(p, containersPhrase(inherit)+" must run under a seccomp profile: "+setType+" on the pod or on each container"))
				} else {
					errs = append(errs, problem(pod, p, containersPhrase(inherit), true))
				}
			}
			return errs
		},
		// Cleared (Linux pods only): each container's effective profile (its own, else the
		// pod's) is of an allowed type, a Localhost one naming its file; the fix then finds a
		// pod profile wherever a container inherits one.
		Clear: func(t celTemplate) (clearance, bool) {
			prof := "sc.?seccompProfile.orValue(" + t.PodSC + ".?seccompProfile.orValue({}))"
			var ok []string
			for _, a := range allowed {
				switch a {
				case corev1.SeccompProfileTypeRuntimeDefault:
					ok = append(ok, prof+".?type.orValue('') == 'RuntimeDefault'")
				case corev1.SeccompProfileTypeLocalhost:
					ok = append(ok, "("+prof+".?type.orValue('') == 'Localhost' && "+prof+".?localhostProfile.orValue('') != '')")
				}
			}
			if len(ok) == 0 {
				return clearance{}, false
			}
			return clearance{Containers: []string{"(" + strings.Join(ok, " || ") + ")"}, Cost: uint64(celMaxContainers) * 300}, true
		},
		// No fix: RuntimeDefault is not allowed, or every container has a profile of its own
		// or from the pod, whatever its type.
		NoFix: func(t celTemplate) (clearance, bool) {
			if !fixable {
				return clearance{}, true
			}
			return clearance{Containers: []string{"(" + t.PodSC + ".?seccompProfile.hasValue() || sc.?seccompProfile.hasValue())"}, Cost: uint64(celMaxContainers) * 100}, true
		},
		Fix: func(w *Workload) bool {
			if !fixable || windowsPod(w) || (w.Spec.SecurityContext != nil && w.Spec.SecurityContext.SeccompProfile != nil) {
				return false
			}
			inherits := false
			for _, c := range w.Containers() {
				if c.SecurityContext == nil || c.SecurityContext.SeccompProfile == nil {
					inherits = true
					break
				}
			}
			if !inherits {
				return false
			}
			w.podSecurityContext(true).SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
			return true
		},
	}
}

// SeccompProfileConfig configures seccomp-profile.
type SeccompProfileConfig struct {
	Settings `json:",inline"`
	// AllowedTypes are the accepted seccomp profile types.
	AllowedTypes []string `json:"allowedTypes,omitempty"`
}

// Default allows RuntimeDefault and Localhost.
func (c *SeccompProfileConfig) Default() {
	c.AllowedTypes = []string{"RuntimeDefault", "Localhost"}
}

// Validate requires at least one type, each RuntimeDefault or Localhost.
func (c *SeccompProfileConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range c.AllowedTypes {
		switch t {
		case "RuntimeDefault", "Localhost":
		default:
			errs = append(errs, field.NotSupported(fldPath.Child("allowedTypes").Index(i), t, []string{"RuntimeDefault", "Localhost"}))
		}
	}
	if len(c.AllowedTypes) == 0 {
		errs = append(errs, field.Required(fldPath.Child("allowedTypes"), "at least one profile type"))
	}
	return errs
}
