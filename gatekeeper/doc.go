// Package gatekeeper turns OPA Gatekeeper objects into a loomguard config: Constraints of
// the kinds that gatekeeper-library documents, Gatekeeper's Config (excluded namespaces) and
// the Assign mutators that set what a loomguard fix sets. Migrate returns the config and a
// report that says, constraint by constraint, whether loomguard enforces exactly what the
// Constraint does (mapped), something close whose differences it lists (partial), or
// nothing (unmapped, with what to do instead). Compare lists the objects on which
// Gatekeeper's audit results and loomguard's verdicts under the migrated config disagree.
//
// The facts about Gatekeeper come from its documentation: the Constraint format
// (spec.match, spec.enforcementAction, spec.parameters, status.violations), the
// config.gatekeeper.sh Config and mutation.gatekeeper.sh Assign, and each constraint kind's
// parameters as gatekeeper-library's templates document them
// (https://open-policy-agent.github.io/gatekeeper-library/website/). The package reads
// objects as unstructured data and never needs Gatekeeper's Go types or a cluster.
package gatekeeper
