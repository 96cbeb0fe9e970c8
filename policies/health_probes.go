package policies

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// health-probes requires every long-running container — a regular container, or a
// restartable init container (a sidecar) — to define a livenessProbe and a readinessProbe,
// so that the kubelet restarts a wedged process and Services stop routing to a pod that
// cannot serve. Loom serves /health/live (always 200) and /health/ready (503 while its
// database is unhealthy) for exactly this (LOOM.md, "probes").
//
// Workloads that run to completion (Jobs, CronJobs, Pods whose restartPolicy is Never or
// OnFailure) are not checked, nor are regular init containers and ephemeral containers:
// the API forbids probes on them. A startupProbe does not replace either probe. The
// default action is warn: a missing probe degrades operations but is not a security
// risk. There is no fix: a probe's endpoint and port cannot be guessed.
func healthProbes(_ Settings) Policy {
	return Policy{
		Fields: []string{
			"{initContainers,containers}[*].livenessProbe",
			"{initContainers,containers}[*].readinessProbe",
			"initContainers[*].restartPolicy",
			"restartPolicy",
		},
		Check: func(w *Workload) field.ErrorList {
			if w.RunsToCompletion() {
				return nil
			}
			var errs field.ErrorList
			for _, c := range w.Containers() {
				if !c.LongRunning() {
					continue
				}
				if c.LivenessProbe == nil {
					errs = append(errs, field.Required(c.Path.Child("livenessProbe"),
						"container "+strconv.Quote(c.Name)+" must define a liveness probe"))
				}
				if c.ReadinessProbe == nil {
					errs = append(errs, field.Required(c.Path.Child("readinessProbe"),
						"container "+strconv.Quote(c.Name)+" must define a readiness probe"))
				}
			}
			return errs
		},
		// Cleared: the workload runs to completion, or every long-running container has both
		// probes.
		Clear: func(t celTemplate) (clearance, bool) {
			probes := "has(c.livenessProbe) && has(c.readinessProbe)"
			switch {
			case t.kind.RunsToCompletion:
				return clearance{}, true
			case t.kind.TemplatePath == nil: // a Pod: its restartPolicy says
				return clearance{Pod: []string{"(" + t.RunsToCompletion() + " || " + t.AllLongRunning(probes) + ")"}, Cost: uint64(celMaxContainers) * 100}, true
			}
			return clearance{LongRunning: []string{probes}, Cost: uint64(celMaxContainers) * 100}, true
		},
	}
}
