// Package audit evaluates what already runs in a cluster with loomguard's policy engine.
//
// Admission only sees what is created or changed from now on; the audit sees the rest. One
// function, Run, lists every workload kind straight from the API server, page by page, and
// evaluates each with the engine in force (exceptions, expiry and exempt namespaces
// included), together with the PodDisruptionBudgets and NetworkPolicies of its namespace
// for the cross-object policies. It counts each finding once, at the top-level
// controller: an object whose controller is itself an audited kind (the ReplicaSet of a
// Deployment, the Pod of a ReplicaSet, the Job of a CronJob) is left out.
//
// Two adapters share it:
//
//   - Auditor, a leader-elected controller-runtime Runnable in `loomguard serve`, runs it
//     on a timer and publishes each complete result as Prometheus gauges (an immutable
//     snapshot swapped atomically: a scrape never sees half a run, a failed run keeps the
//     last complete one), logs new findings (rate-limited) and optionally records
//     Kubernetes Events on the offending objects;
//   - `loomguard audit` runs it once and prints the result like `loomguard check`.
//
// Memory stays bounded by the page size: no informer, no cache of pod specs. Only a
// small record per evaluated workload (its reference and its report) outlives its page.
package audit
