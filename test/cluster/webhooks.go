package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	lgwebhook "github.com/loomguard/loomguard/webhook"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

const (
	// webhookConfigurationsFile is the manifest users apply, relative to the repository.
	webhookConfigurationsFile = "manifests/base/webhook-configurations.yaml"

	mutatingWebhook   = "mutate.loomguard.io"
	validatingWebhook = "validate.loomguard.io"

	// webhookTimeout bounds the wait for the API server to call freshly registered webhooks.
	webhookTimeout = 30 * time.Second
)

// webhookConfigurations are the two objects of webhookConfigurationsFile.
type webhookConfigurations struct {
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
}

// readWebhookConfigurations decodes the webhook configurations manifest. It must hold
// exactly one MutatingWebhookConfiguration and one ValidatingWebhookConfiguration.
func readWebhookConfigurations(path string) (*webhookConfigurations, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading webhook configurations: %w", err)
	}
	var out webhookConfigurations
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		switch meta.Kind {
		case "":
			continue // an empty document
		case "MutatingWebhookConfiguration":
			if out.mutating != nil {
				return nil, fmt.Errorf("%s: more than one MutatingWebhookConfiguration", path)
			}
			out.mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, out.mutating); err != nil {
				return nil, fmt.Errorf("decoding MutatingWebhookConfiguration in %s: %w", path, err)
			}
		case "ValidatingWebhookConfiguration":
			if out.validating != nil {
				return nil, fmt.Errorf("%s: more than one ValidatingWebhookConfiguration", path)
			}
			out.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, out.validating); err != nil {
				return nil, fmt.Errorf("decoding ValidatingWebhookConfiguration in %s: %w", path, err)
			}
		default:
			return nil, fmt.Errorf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
	if out.mutating == nil || out.validating == nil {
		return nil, fmt.Errorf("%s must hold a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration", path)
	}
	return &out, nil
}

// loopbackClientConfig replaces a webhook's service reference by the local loomguard's URL,
// keeping the service's path, and sets the caBundle.
func (c *Cluster) loopbackClientConfig(name string, cc *admissionregistrationv1.WebhookClientConfig) error {
	if cc.Service == nil || cc.Service.Path == nil {
		return fmt.Errorf("webhook %s: clientConfig.service.path is not set", name)
	}
	url := c.LoomguardURL() + *cc.Service.Path
	*cc = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: c.lg.caPEM}
	return nil
}

// RegisterWebhooks creates (or replaces) loomguard's MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration from manifests/base/webhook-configurations.yaml, with only
// their clientConfig rewritten to the local loomguard, and waits until the API server calls
// both webhooks.
func (c *Cluster) RegisterWebhooks(ctx context.Context) error {
	cfgs, err := readWebhookConfigurations(c.RepoPath(webhookConfigurationsFile))
	if err != nil {
		return err
	}
	for i := range cfgs.mutating.Webhooks {
		w := &cfgs.mutating.Webhooks[i]
		if err := c.loopbackClientConfig(w.Name, &w.ClientConfig); err != nil {
			return err
		}
	}
	for i := range cfgs.validating.Webhooks {
		w := &cfgs.validating.Webhooks[i]
		if err := c.loopbackClientConfig(w.Name, &w.ClientConfig); err != nil {
			return err
		}
	}

	ar := c.clientset.AdmissionregistrationV1()
	if _, err := ar.MutatingWebhookConfigurations().Create(ctx, cfgs.mutating, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := ar.MutatingWebhookConfigurations().Delete(ctx, cfgs.mutating.Name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("replacing MutatingWebhookConfiguration %s: %w", cfgs.mutating.Name, err)
		}
		_, err = ar.MutatingWebhookConfigurations().Create(ctx, cfgs.mutating, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", cfgs.mutating.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", cfgs.mutating.Name, err)
	}
	if _, err := ar.ValidatingWebhookConfigurations().Create(ctx, cfgs.validating, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := ar.ValidatingWebhookConfigurations().Delete(ctx, cfgs.validating.Name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("replacing ValidatingWebhookConfiguration %s: %w", cfgs.validating.Name, err)
		}
		_, err = ar.ValidatingWebhookConfigurations().Create(ctx, cfgs.validating, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating ValidatingWebhookConfiguration %s: %w", cfgs.validating.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("creating ValidatingWebhookConfiguration %s: %w", cfgs.validating.Name, err)
	}
	return c.WaitForWebhooks(ctx)
}

// UnregisterWebhooks deletes loomguard's MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration (absent ones are fine). The API server stops calling the
// webhooks shortly after, asynchronously; RegisterWebhooks puts them back.
func (c *Cluster) UnregisterWebhooks(ctx context.Context) error {
	cfgs, err := readWebhookConfigurations(c.RepoPath(webhookConfigurationsFile))
	if err != nil {
		return err
	}
	ar := c.clientset.AdmissionregistrationV1()
	if err := ar.MutatingWebhookConfigurations().Delete(ctx, cfgs.mutating.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting MutatingWebhookConfiguration %s: %w", cfgs.mutating.Name, err)
	}
	if err := ar.ValidatingWebhookConfigurations().Delete(ctx, cfgs.validating.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ValidatingWebhookConfiguration %s: %w", cfgs.validating.Name, err)
	}
	return nil
}

// WaitForWebhooks waits until the API server sends admission reviews to both of loomguard's
// webhooks: the API server loads webhook configurations asynchronously, so a request right
// after registration may skip them. It dry-runs the creation of a Deployment in the default
// namespace (whatever the verdict) until, for each webhook, loomguard's request counter went
// up or the API server counted the probe as excluded by the webhook's matchConditions
// (apiserver_admission_match_condition_exclusions_total): loomguard keeps matchConditions
// that let the API server skip objects that certainly pass, and a config under which the
// probe passes would otherwise never see it called. Either way the API server has loaded
// the configuration.
func (c *Cluster) WaitForWebhooks(ctx context.Context) error {
	count := func(ctx context.Context) (mutate, validate float64, err error) {
		samples, err := c.LoomguardMetric(ctx, "loomguard_admission_requests_total")
		if err != nil {
			return 0, 0, err
		}
		for labels, v := range samples {
			switch {
			case strings.Contains(labels, `webhook="mutate"`):
				mutate += v
			case strings.Contains(labels, `webhook="validate"`):
				validate += v
			}
		}
		excludedM, excludedV, err := c.MatchConditionExclusions(ctx)
		if err != nil {
			return 0, 0, err
		}
		return mutate + excludedM, validate + excludedV, nil
	}
	m0, v0, err := count(ctx)
	if err != nil {
		return err
	}
	probe := probeDeployment()
	return c.poll(ctx, webhookTimeout, "the API server to call loomguard's webhooks", []*process{c.apiserver, c.loomguardProcess()}, func(ctx context.Context) error {
		_, err := c.clientset.AppsV1().Deployments(metav1.NamespaceDefault).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		m, v, cerr := count(ctx)
		if cerr != nil {
			return cerr
		}
		if m > m0 && v > v0 {
			return nil
		}
		return fmt.Errorf("webhooks neither called nor excluded by their matchConditions yet (mutate %v→%v, validate %v→%v; last dry run: %v)", m0, m, v0, v, err)
	})
}

// MatchConditionExclusions reads from the API server's /metrics how many requests it did
// not send to each of loomguard's webhooks because a matchCondition was false.
func (c *Cluster) MatchConditionExclusions(ctx context.Context) (mutate, validate float64, err error) {
	const metric = "apiserver_admission_match_condition_exclusions_total{"
	data, err := c.clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		fields := strings.Fields(line[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parsing the API server's metric line %q: %w", line, err)
		}
		switch labels := line[:end]; {
		case strings.Contains(labels, `name="`+mutatingWebhook+`"`):
			mutate += v
		case strings.Contains(labels, `name="`+validatingWebhook+`"`):
			validate += v
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	return mutate, validate, nil
}

// probeDeployment is the object WaitForWebhooks dry-runs.
func probeDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "loomguard-probe"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "loomguard-webhook-probe", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "probe",
					Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}
}

// waitMatchConditions waits until loomguard has set the matchConditions of its config on both
// webhooks, so that what runs next (the e2e tests, make run's demo) meets the webhooks as a
// cluster runs them.
func (c *Cluster) waitMatchConditions(ctx context.Context) error {
	cfg, err := c.LoomguardPolicies()
	if err != nil {
		return err
	}
	want := map[string][]admissionregistrationv1.MatchCondition{
		mutatingWebhook:   lgwebhook.WantMatchConditions(lgwebhook.MutatingWebhookName, cfg),
		validatingWebhook: lgwebhook.WantMatchConditions(lgwebhook.ValidatingWebhookName, cfg),
	}
	return c.poll(ctx, webhookTimeout, "loomguard to set its webhooks' matchConditions", []*process{c.apiserver, c.loomguardProcess()}, func(ctx context.Context) error {
		m, v, err := LiveWebhooks(ctx, c.clientset, "loomguard", "loomguard")
		if err != nil {
			return err
		}
		got := map[string][]admissionregistrationv1.MatchCondition{}
		for _, w := range append(m, v...) {
			got[w.Name] = w.MatchConditions
		}
		for name, conds := range want {
			if !slices.Equal(got[name], conds) {
				return fmt.Errorf("%s has %d matchConditions, not yet the %d of loomguard's config", name, len(got[name]), len(conds))
			}
		}
		return nil
	})
}

// LiveWebhook is a webhook of a live webhook configuration: what the tests compare of it.
type LiveWebhook struct {
	Name            string
	CABundle        []byte
	MatchConditions []admissionregistrationv1.MatchCondition
}

// LiveWebhooks returns the webhooks of the MutatingWebhookConfiguration mutating and of the
// ValidatingWebhookConfiguration validating, as the API server holds them now.
func LiveWebhooks(ctx context.Context, cs kubernetes.Interface, mutating, validating string) (m, v []LiveWebhook, err error) {
	ar := cs.AdmissionregistrationV1()
	mc, err := ar.MutatingWebhookConfigurations().Get(ctx, mutating, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	vc, err := ar.ValidatingWebhookConfigurations().Get(ctx, validating, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	for _, w := range mc.Webhooks {
		m = append(m, LiveWebhook{Name: w.Name, CABundle: w.ClientConfig.CABundle, MatchConditions: w.MatchConditions})
	}
	for _, w := range vc.Webhooks {
		v = append(v, LiveWebhook{Name: w.Name, CABundle: w.ClientConfig.CABundle, MatchConditions: w.MatchConditions})
	}
	return m, v, nil
}
