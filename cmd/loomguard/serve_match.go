//go:build !loomguard_cli

package main

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/loomguard/loomguard/webhook"
)

// matchConditionFlags are serve's flags for the webhooks' matchConditions.
type matchConditionFlags struct {
	enabled bool
}

// addMatchConditionFlags registers the match-condition flags on serve's flag set.
func addMatchConditionFlags(fs *pflag.FlagSet, f *matchConditionFlags) {
	fs.BoolVar(&f.enabled, "match-conditions", true, "keep the matchConditions of loomguard's webhooks in the webhook configurations in step with the config in force, so that the API server skips the calls for objects that certainly pass (needs a cluster; the Lease holder writes). --match-conditions=false, or --leader-elect=false, removes them instead: every object is sent")
}

// addMatchConditionsSyncer adds the match-condition syncer to the server. With a cluster it
// keeps the generated conditions under the Lease; with --match-conditions=false, or without
// leader election (--leader-elect=false, which would make every replica a writer of its own
// config's conditions), it removes them on every replica instead, so that no stale
// conditions outlive the config they were generated for. Without a cluster, or with both
// configurations "", it does nothing.
func addMatchConditionsSyncer(srv *webhook.Server, f *matchConditionFlags, webhooks webhookConfigurationFlags, restConfig *rest.Config, leaderElect bool, log logr.Logger) error {
	log = log.WithName("match-conditions")
	remove := false
	switch {
	case srv.Manager() == nil || restConfig == nil:
		log.Info("matchConditions left alone: no cluster connection")
		return nil
	case webhooks.mutating == "" && webhooks.validating == "":
		log.Info("matchConditions left alone: no webhook configuration named (--mutating-webhook-configuration and --validating-webhook-configuration are empty)")
		return nil
	case !f.enabled:
		log.Info("removing the webhooks' matchConditions (--match-conditions=false): every object is sent to loomguard")
		remove = true
	case !leaderElect:
		log.Info("removing the webhooks' matchConditions: keeping them needs a single writer, the holder of the Lease (--leader-elect=false); every object is sent to loomguard")
		remove = true
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("creating the match-condition client: %w", err)
	}
	s, err := webhook.NewMatchConditionsSyncer(webhook.MatchConditionsOptions{
		Client:                         client,
		MutatingWebhookConfiguration:   webhooks.mutating,
		ValidatingWebhookConfiguration: webhooks.validating,
		Engine:                         srv.Engine,
		Changed:                        srv.Reloader().Subscribe(),
		Metrics:                        srv.Metrics(),
		Logger:                         log,
		Remove:                         remove,
	})
	if err != nil {
		return err
	}
	if err := srv.Add(s); err != nil {
		return fmt.Errorf("adding the match-condition syncer: %w", err)
	}
	return nil
}
