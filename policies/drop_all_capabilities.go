package policies

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// drop-all-capabilities requires every container (init, regular and ephemeral) to drop all
// Linux capabilities and to add back only what it needs:
//
//   - securityContext.capabilities.drop includes "ALL" (spelled exactly so, as the Pod
//     Security Standards require);
//   - each entry of capabilities.add names a capability of the config's allowedAdd (default
//     NET_BIND_SERVICE), compared case-insensitively and with an optional "CAP_" prefix, as
//     container runtimes accept them;
//   - NET_BIND_SERVICE only in a container that declares a containerPort below 1024, the
//     only reason to need it. Loom listens on ports >= 1024 only (LOOM.md, "capabilities"),
//     so Loom needs no capability at all.
//
// Each forbidden add is reported at its own index.
//
// The fix appends "ALL" to drop where it is missing, creating securityContext and
// capabilities as needed. It never removes an add: dropping a capability that a process
// relies on would break it at run time, so a forbidden add stays a violation.
//
// Windows pods (spec.os.name: windows) are skipped: the API server refuses capabilities there.
func dropAllCapabilities(cfg DropAllCapabilitiesConfig) Policy {
	// Names are compared without a "CAP_" prefix and case-insensitively, in the config too.
	allowed := make([]string, len(cfg.AllowedAdd))
	netBindAllowed := false
	for i, a := range cfg.AllowedAdd {
		allowed[i] = strings.ToUpper(capabilityName(corev1.Capability(a)))
		netBindAllowed = netBindAllowed || allowed[i] == "NET_BIND_SERVICE"
	}
	allowedHint := ""
	switch {
	case len(allowed) == 1 && netBindAllowed:
		allowedHint = `; it may add only "NET_BIND_SERVICE", and only with a containerPort below 1024`
	case len(allowed) > 0:
		allowedHint = "; it may add only " + quotedList(allowed)
		if netBindAllowed {
			allowedHint += ` ("NET_BIND_SERVICE" only with a containerPort below 1024)`
		}
	}
	isAllowed := func(name string) bool {
		for _, a := range allowed {
			if strings.EqualFold(name, a) {
				return true
			}
		}
		return false
	}
	return Policy{
		Fields: []string{
			"{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add",
			"{initContainers,containers,ephemeralContainers}[*].ports[*].containerPort",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			if windowsPod(w) {
				return nil
			}
			var errs field.ErrorList
			for _, c := range w.Containers() {
				var caps *corev1.Capabilities
				if c.SecurityContext != nil {
					caps = c.SecurityContext.Capabilities
				}
				if !dropsAll(caps) {
					errs = append(errs, field.Required(c.Path.Child("securityContext", "capabilities", "drop"),
						containerPhrase(c.Name)+` must drop "ALL" capabilities`))
				}
				if caps == nil {
					continue
				}
				for i, a := range caps.Add {
					name := capabilityName(a)
					switch {
					case !isAllowed(name):
						errs = append(errs, field.Forbidden(c.Path.Child("securityContext", "capabilities", "add").Index(i),
							containerPhrase(c.Name)+" must not add capability "+strconv.Quote(string(a))+allowedHint))
					case strings.EqualFold(name, "NET_BIND_SERVICE") && !hasPrivilegedPort(c.Container):
						errs = append(errs, field.Forbidden(c.Path.Child("securityContext", "capabilities", "add").Index(i),
							containerPhrase(c.Name)+" must not add capability "+strconv.Quote(string(a))+": it declares no containerPort below 1024"))
					}
				}
			}
			return errs
		},
		// Cleared (Linux pods only): every container drops "ALL" and adds nothing back, whatever
		// allowedAdd says; the fix then has nothing to drop.
		Clear: func(t celTemplate) (clearance, bool) {
			return clearance{Containers: []string{
				celDropsAll(),
				"size(sc.?capabilities.?add.orValue([])) == 0",
			}, Cost: uint64(celMaxContainers) * (20*celMaxItems + 100)}, true
		},
		// No fix: every container already drops ALL.
		NoFix: func(t celTemplate) (clearance, bool) {
			return clearance{Containers: []string{celDropsAll()}, Cost: uint64(celMaxContainers) * (20*celMaxItems + 100)}, true
		},
		Fix: func(w *Workload) bool {
			if windowsPod(w) {
				return false
			}
			changed := false
			for _, c := range w.Containers() {
				if c.SecurityContext != nil && dropsAll(c.SecurityContext.Capabilities) {
					continue
				}
				sc := securityContext(c.Container, true)
				if sc.Capabilities == nil {
					sc.Capabilities = &corev1.Capabilities{}
				}
				sc.Capabilities.Drop = append(sc.Capabilities.Drop, "ALL")
				changed = true
			}
			return changed
		},
	}
}

// celDropsAll is the CEL condition that a container's securityContext sc drops "ALL", with
// at most celMaxItems drops: a membership test, no comprehension.
func celDropsAll() string {
	drop := "sc.?capabilities.?drop.orValue([])"
	return "(size(" + drop + ") <= " + strconv.Itoa(celMaxItems) + " && 'ALL' in " + drop + ")"
}

// dropsAll reports whether caps drops "ALL".
func dropsAll(caps *corev1.Capabilities) bool {
	if caps == nil {
		return false
	}
	for _, d := range caps.Drop {
		if d == "ALL" {
			return true
		}
	}
	return false
}

// capabilityName strips an optional "CAP_" prefix (in any case) from a capability.
func capabilityName(c corev1.Capability) string {
	s := string(c)
	if len(s) > 4 && strings.EqualFold(s[:4], "CAP_") {
		return s[4:]
	}
	return s
}

// hasPrivilegedPort reports whether the container declares a containerPort below 1024.
func hasPrivilegedPort(c *corev1.Container) bool {
	for _, p := range c.Ports {
		if p.ContainerPort > 0 && p.ContainerPort < 1024 {
			return true
		}
	}
	return false
}

// DropAllCapabilitiesConfig configures drop-all-capabilities.
type DropAllCapabilitiesConfig struct {
	Settings `json:",inline"`
	// AllowedAdd lists the capabilities a container may add back. NET_BIND_SERVICE is
	// allowed only to a container that declares a containerPort below 1024.
	AllowedAdd []string `json:"allowedAdd,omitempty"`
}

// Default allows NET_BIND_SERVICE alone.
func (c *DropAllCapabilitiesConfig) Default() {
	c.AllowedAdd = []string{"NET_BIND_SERVICE"}
}

// Validate requires capability names without the CAP_ prefix, never ALL.
func (c *DropAllCapabilitiesConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, name := range c.AllowedAdd {
		if name == "" || name == "ALL" || strings.HasPrefix(name, "CAP_") {
			errs = append(errs, field.Invalid(fldPath.Child("allowedAdd").Index(i), name, "must be a capability name without the CAP_ prefix, not ALL"))
		}
	}
	return errs
}
