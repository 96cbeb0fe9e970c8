// Package webhook is loomguard's admission adapter around the policy engine: the validating
// and mutating webhooks (AdmissionReview v1 at ValidatePath and MutatePath), the fix patch
// that `loomguard fix` shares (Mutate), the config reloader, metrics and the server wiring.
//
// It keeps no package-level state: a Server owns its engine pointer, metrics, reloader,
// certificate watcher and runnables. Without a cluster it runs them as a plain group; with
// one, under a controller-runtime manager, which later Runnables (the audit) can share.
package webhook
