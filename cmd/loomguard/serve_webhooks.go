//go:build !loomguard_cli

package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/loomguard/loomguard/certs"
	"github.com/loomguard/loomguard/webhook"
)

// webhookConfigurationFlags name the two webhook configurations that hold loomguard's
// webhooks. loomguard keeps their caBundle (--cert-mode=self-managed) and their
// matchConditions; "" leaves one alone.
type webhookConfigurationFlags struct {
	mutating, validating string
	// The earlier spellings for the caBundle alone (--cert-*-webhook-configuration),
	// deprecated: they name the same objects.
	certMutating, certValidating string
}

// addWebhookConfigurationFlags registers the configuration names on serve's flag set.
func addWebhookConfigurationFlags(fs *pflag.FlagSet, f *webhookConfigurationFlags) {
	fs.StringVar(&f.mutating, "mutating-webhook-configuration", certs.DefaultWebhookConfigurationName,
		`MutatingWebhookConfiguration holding `+webhook.MutatingWebhookName+`: loomguard keeps its matchConditions, and its caBundle with --cert-mode=self-managed ("" leaves it alone)`)
	fs.StringVar(&f.validating, "validating-webhook-configuration", certs.DefaultWebhookConfigurationName,
		`ValidatingWebhookConfiguration holding `+webhook.ValidatingWebhookName+`: loomguard keeps its matchConditions, and its caBundle with --cert-mode=self-managed ("" leaves it alone)`)
	fs.StringVar(&f.certMutating, "cert-mutating-webhook-configuration", certs.DefaultWebhookConfigurationName, "")
	fs.StringVar(&f.certValidating, "cert-validating-webhook-configuration", certs.DefaultWebhookConfigurationName, "")
	_ = fs.MarkDeprecated("cert-mutating-webhook-configuration", "use --mutating-webhook-configuration")
	_ = fs.MarkDeprecated("cert-validating-webhook-configuration", "use --validating-webhook-configuration")
}

// resolve folds the deprecated spellings, given on the command line or in the environment,
// into the names. Error: a deprecated spelling and its replacement both given, with
// different values.
func (f *webhookConfigurationFlags) resolve(fs *pflag.FlagSet) error {
	for _, p := range []struct {
		name, old string
		value     *string
		oldValue  string
	}{
		{"mutating-webhook-configuration", "cert-mutating-webhook-configuration", &f.mutating, f.certMutating},
		{"validating-webhook-configuration", "cert-validating-webhook-configuration", &f.validating, f.certValidating},
	} {
		if !fs.Changed(p.old) {
			continue
		}
		if fs.Changed(p.name) && *p.value != p.oldValue {
			return fmt.Errorf("--%s=%q and --%s=%q name different configurations: give --%s only", p.old, p.oldValue, p.name, *p.value, p.name)
		}
		*p.value = p.oldValue
	}
	return nil
}
