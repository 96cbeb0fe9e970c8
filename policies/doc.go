// Package policies is loomguard's policy engine: the one place where Loom's deployment
// policies are defined, evaluated and fixed.
//
// It is pure: it imports only the Kubernetes API types, apimachinery, sigs.k8s.io/yaml and
// sigs.k8s.io/json, performs no I/O beyond the byte slices it is handed, and keeps no
// package-level state. The admission webhook, the background audit and the offline CLI are
// thin adapters around the same Engine, so they cannot disagree.
//
// The flow is:
//
//	cfg, errs := LoadConfig(data)      // strict, every problem listed with its field path
//	engine, err := NewEngine(cfg, time.Now)
//	w, ok := NewWorkload(obj)          // Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob
//	w.Related = view                   // optional: the namespace's PDBs and NetworkPolicies (audit, CLI)
//	report := engine.Evaluate(w, ns)   // ns decides exemption, overrides, exceptions; never mutates
//	fixed := engine.Mutate(w, ns)      // applies the safe defaults, in registry order
package policies
