//go:build !loomguard_cli

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/gatekeeper"
	"github.com/loomguard/loomguard/policies"
)

// gatekeeperPageSize is how many objects one List call of `migrate --from-cluster` asks for.
const gatekeeperPageSize = 500

// maxOwnerLookups bounds the Get calls --compare makes to find the workload that owns a
// Pod (or ReplicaSet, Job) that Gatekeeper reports.
const maxOwnerLookups = 2000

// gatekeeperCluster reads Gatekeeper's objects and the workloads from a cluster.
type gatekeeperCluster struct {
	host      string
	reader    client.Reader
	discovery discovery.DiscoveryInterface
}

// gatekeeperConnectFunc connects to a cluster for `migrate --from-cluster`.
type gatekeeperConnectFunc func(kubeconfig, kubeContext string, timeout time.Duration) (*gatekeeperCluster, error)

func connectGatekeeper(kubeconfig, kubeContext string, timeout time.Duration) (*gatekeeperCluster, error) {
	cfg, err := restConfig(kubeconfig, kubeContext, timeout)
	if err != nil {
		return nil, err
	}
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client for %s: %w", cfg.Host, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: audit.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	return &gatekeeperCluster{host: cfg.Host, reader: c, discovery: d}, nil
}

// gatekeeperObjects lists every Constraint (every kind the API server serves in
// constraints.gatekeeper.sh), Gatekeeper's Configs and its mutators, page by page.
func (g *gatekeeperCluster) gatekeeperObjects(ctx context.Context) ([]gatekeeper.Object, error) {
	groups, err := g.discovery.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discovering API groups: %w", err)
	}
	var out []gatekeeper.Object
	found := false
	for _, grp := range groups.Groups {
		switch grp.Name {
		case gatekeeper.ConstraintGroup, gatekeeper.ConfigGroup, gatekeeper.MutationGroup:
		default:
			continue
		}
		found = found || grp.Name == gatekeeper.ConstraintGroup
		gv := grp.PreferredVersion.GroupVersion
		list, err := g.discovery.ServerResourcesForGroupVersion(gv)
		if err != nil {
			return nil, fmt.Errorf("discovering %s: %w", gv, err)
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			gvk := schema.FromAPIVersionAndKind(gv, r.Kind)
			objs, err := g.listAll(ctx, gvk)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	if !found {
		return nil, fmt.Errorf("the API server serves no %s resources: Gatekeeper's constraint CRDs are not installed", gatekeeper.ConstraintGroup)
	}
	return out, nil
}

func (g *gatekeeperCluster) listAll(ctx context.Context, gvk schema.GroupVersionKind) ([]gatekeeper.Object, error) {
	var out []gatekeeper.Object
	cont := ""
	for {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		opts := []client.ListOption{client.Limit(gatekeeperPageSize)}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		if err := g.reader.List(ctx, l, opts...); err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range l.Items {
			u := &l.Items[i]
			u.SetGroupVersionKind(gvk)
			src := "cluster: " + gvk.Kind + " " + u.GetName()
			if ns := u.GetNamespace(); ns != "" {
				src = "cluster: " + gvk.Kind + " " + ns + "/" + u.GetName()
			}
			out = append(out, gatekeeper.Object{Source: src, Obj: u})
		}
		if cont = l.GetContinue(); cont == "" {
			return out, nil
		}
	}
}

// verdicts audits the cluster's workloads with the migrated config (the code of
// `loomguard audit`), and resolves the objects Gatekeeper reports to their top-level owner.
func (g *gatekeeperCluster) verdicts(ctx context.Context, cfg *policies.Config) ([]gatekeeper.Verdict, gatekeeper.OwnerResolver, error) {
	engine, err := policies.NewEngine(cfg, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("the migrated config: %w", err)
	}
	res, err := audit.Run(ctx, audit.Options{Reader: g.reader, Engine: engine})
	if err != nil {
		return nil, nil, fmt.Errorf("auditing %s: %w", g.host, err)
	}
	var out []gatekeeper.Verdict
	for i := range res.Workloads {
		w := &res.Workloads[i]
		out = append(out, verdictOf(engine, w.Ref.Kind, w.Ref.Namespace, w.Ref.Name, &w.Report))
	}
	lookups := 0
	resolve := func(k gatekeeper.ObjectKey) (gatekeeper.ObjectKey, bool) {
		for range 4 { // Pod -> ReplicaSet -> Deployment; Pod -> Job -> CronJob
			gvk, ok := ownedKinds[k.Kind]
			if !ok {
				return k, true // a kind no workload controller creates: top level
			}
			if lookups >= maxOwnerLookups {
				return k, false
			}
			lookups++
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := g.reader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, u); err != nil {
				return k, false
			}
			var next *gatekeeper.ObjectKey
			for _, ref := range u.GetOwnerReferences() {
				if ref.Controller != nil && *ref.Controller {
					next = &gatekeeper.ObjectKey{Kind: ref.Kind, Namespace: k.Namespace, Name: ref.Name}
				}
			}
			if next == nil {
				return k, true
			}
			k = *next
		}
		return k, true
	}
	return out, resolve, nil
}

// ownedKinds are the kinds whose objects a workload controller creates, with their
// group-version: what Gatekeeper may report below the workload loomguard reports.
var ownedKinds = map[string]schema.GroupVersionKind{
	"Pod":        {Version: "v1", Kind: "Pod"},
	"ReplicaSet": {Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	"Job":        {Group: "batch", Version: "v1", Kind: "Job"},
}
