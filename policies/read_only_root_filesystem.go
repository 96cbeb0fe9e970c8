package policies

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// read-only-root-filesystem requires every init and regular container to set
// securityContext.readOnlyRootFilesystem: true (the field has no pod-level form). Unset is
// reported as required, an explicit false as invalid.
//
// Ephemeral containers are exempt: they are debugging tools attached to a running pod, and
// a debugger may need to write (install a tool, keep a history file); they cannot mount
// volumes of their own over writable paths either.
//
// The fix sets readOnlyRootFilesystem: true where it is unset and never flips an explicit
// false. Paths that must stay writable get their volumes from writable-paths, whose fix runs
// after this one (see Catalog): Loom writes to /tmp (LOOM.md, "writable paths").
//
// Windows pods (spec.os.name: windows) are skipped: the API server refuses the field there.
func readOnlyRootFilesystem(cfg Settings) Policy {
	return Policy{
		Fields: []string{
			"{initContainers,containers}[*].securityContext.readOnlyRootFilesystem",
			"os.name",
		},
		Check: func(w *Workload) field.ErrorList {
			if windowsPod(w) {
				return nil
			}
			var errs field.ErrorList
			for _, c := range w.Containers() {
				if c.Kind == Ephemeral {
					continue
				}
				var ro *bool
				if c.SecurityContext != nil {
					ro = c.SecurityContext.ReadOnlyRootFilesystem
				}
				switch {
				case ro == nil:
					errs = append(errs, field.Required(c.Path.Child("securityContext", "readOnlyRootFilesystem"),
						containerPhrase(c.Name)+" must set readOnlyRootFilesystem: true"))
				case !*ro:
					errs = append(errs, field.Invalid(c.Path.Child("securityContext", "readOnlyRootFilesystem"), false,
						containerPhrase(c.Name)+" must have a read-only root filesystem: set readOnlyRootFilesystem to true and mount volumes where it writes"))
				}
			}
			return errs
		},
		// Cleared (Linux pods only): every init and regular container sets
		// readOnlyRootFilesystem: true.
		Clear: func(t celTemplate) (clearance, bool) {
			return clearance{NonEphemeral: []string{"sc.?readOnlyRootFilesystem.orValue(false) == true"}, Cost: uint64(celMaxContainers) * 50}, true
		},
		// No fix: every init and regular container sets readOnlyRootFilesystem, to any value.
		NoFix: func(t celTemplate) (clearance, bool) {
			return clearance{NonEphemeral: []string{"sc.?readOnlyRootFilesystem.hasValue()"}, Cost: uint64(celMaxContainers) * 50}, true
		},
		Fix: func(w *Workload) bool {
			if windowsPod(w) {
				return false
			}
			changed := false
			for _, c := range w.Containers() {
				if c.Kind == Ephemeral || (c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil) {
					continue
				}
				securityContext(c.Container, true).ReadOnlyRootFilesystem = new(true)
				changed = true
			}
			return changed
		},
	}
}
