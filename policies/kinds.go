package policies

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ObjectList is a typed list of objects (a DeploymentList), as a list call returns it. A
// controller-runtime client.ObjectList is one.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// WorkloadKind is one kind of pod-owning object the engine evaluates, with everything the
// engine and its adapters need to know about it.
type WorkloadKind struct {
	// GroupVersionKind is the kind in the one version loomguard reads: the version the
	// API server serves and the admission webhooks are registered for.
	schema.GroupVersionKind
	// AddToScheme registers the kind's API group.
	AddToScheme func(*runtime.Scheme) error
	// New returns an empty object of the kind (a *appsv1.Deployment).
	New func() runtime.Object
	// NewList returns an empty typed list of the kind (a *appsv1.DeploymentList).
	NewList func() ObjectList
	// TemplatePath is the field path of the pod template, whose metadata and spec the
	// policies read; nil for a Pod, which is its own template (metadata, spec).
	TemplatePath *field.Path
	// RunsToCompletion says the kind's pods exit when their work is done (Job, CronJob).
	RunsToCompletion bool
	// TemplatePinned says the controller that generates objects of the kind recognises
	// them by their pod template (a Deployment its ReplicaSets): changing a generated
	// object's template would make the controller replace it.
	TemplatePinned bool
	// generator, for a kind whose objects a workload controller generates with a derived
	// name, returns the generating workload's name from an object's name and the labels of
	// the pods it owns: a Deployment's ReplicaSet is <deployment>-<pod-template-hash>, a
	// CronJob's Job is <cronjob>-<scheduled minute>.
	generator func(name string, podLabels map[string]string) (string, bool)
	// parts returns obj's own metadata, pod template and replicas (nil for a kind without
	// replicas), or false when obj is not of the kind.
	parts func(obj runtime.Object) (workloadParts, bool)
}

// workloadParts are the pieces of an object that its Workload view aliases.
type workloadParts struct {
	meta     *metav1.ObjectMeta
	template *metav1.ObjectMeta // nil for a Pod: meta
	spec     *corev1.PodSpec
	replicas **int32 // nil for a kind without replicas
}

// workloadKinds is the table of workload kinds, in the order they are listed and reported.
// Adding a kind adds one entry here; nothing else names the kinds. It is never modified.
var workloadKinds = [...]WorkloadKind{
	{
		GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Pod"),
		AddToScheme:      corev1.AddToScheme,
		New:              func() runtime.Object { return &corev1.Pod{} },
		NewList:          func() ObjectList { return &corev1.PodList{} },
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*corev1.Pod)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{meta: &o.ObjectMeta, spec: &o.Spec}, true
		},
	},
	{
		GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("Deployment"),
		AddToScheme:      appsv1.AddToScheme,
		New:              func() runtime.Object { return &appsv1.Deployment{} },
		NewList:          func() ObjectList { return &appsv1.DeploymentList{} },
		TemplatePath:     field.NewPath("spec", "template"),
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*appsv1.Deployment)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{&o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Replicas}, true
		},
	},
	{
		GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
		AddToScheme:      appsv1.AddToScheme,
		New:              func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:          func() ObjectList { return &appsv1.StatefulSetList{} },
		TemplatePath:     field.NewPath("spec", "template"),
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*appsv1.StatefulSet)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{&o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Replicas}, true
		},
	},
	{
		GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
		AddToScheme:      appsv1.AddToScheme,
		New:              func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:          func() ObjectList { return &appsv1.DaemonSetList{} },
		TemplatePath:     field.NewPath("spec", "template"),
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*appsv1.DaemonSet)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{&o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, nil}, true
		},
	},
	{
		GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		AddToScheme:      appsv1.AddToScheme,
		New:              func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:          func() ObjectList { return &appsv1.ReplicaSetList{} },
		TemplatePath:     field.NewPath("spec", "template"),
		TemplatePinned:   true,
		generator: func(name string, podLabels map[string]string) (string, bool) {
			h := podLabels[appsv1.DefaultDeploymentUniqueLabelKey]
			if h == "" {
				return "", false
			}
			return strings.CutSuffix(name, "-"+h)
		},
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*appsv1.ReplicaSet)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{&o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Replicas}, true
		},
	},
	{
		GroupVersionKind: batchv1.SchemeGroupVersion.WithKind("Job"),
		AddToScheme:      batchv1.AddToScheme,
		New:              func() runtime.Object { return &batchv1.Job{} },
		NewList:          func() ObjectList { return &batchv1.JobList{} },
		TemplatePath:     field.NewPath("spec", "template"),
		RunsToCompletion: true,
		generator: func(name string, _ map[string]string) (string, bool) {
			i := strings.LastIndexByte(name, '-')
			if i <= 0 || !allDigits(name[i+1:]) {
				return "", false
			}
			return name[:i], true
		},
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*batchv1.Job)
			if !ok {
				return workloadParts{}, false
			}
			return workloadParts{&o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, nil}, true
		},
	},
	{
		GroupVersionKind: batchv1.SchemeGroupVersion.WithKind("CronJob"),
		AddToScheme:      batchv1.AddToScheme,
		New:              func() runtime.Object { return &batchv1.CronJob{} },
		NewList:          func() ObjectList { return &batchv1.CronJobList{} },
		TemplatePath:     field.NewPath("spec", "jobTemplate", "spec", "template"),
		RunsToCompletion: true,
		parts: func(obj runtime.Object) (workloadParts, bool) {
			o, ok := obj.(*batchv1.CronJob)
			if !ok {
				return workloadParts{}, false
			}
			t := &o.Spec.JobTemplate.Spec.Template
			return workloadParts{&o.ObjectMeta, &t.ObjectMeta, &t.Spec, nil}, true
		},
	},
}

// WorkloadKinds returns the workload kinds, in the order they are listed and reported.
func WorkloadKinds() []WorkloadKind { return slices.Clone(workloadKinds[:]) }

// LookupWorkloadKind returns the workload kind of a group and kind, or false when objects
// of that group and kind are not workloads. Any version matches: the caller checks it.
func LookupWorkloadKind(gk schema.GroupKind) (WorkloadKind, bool) {
	if k := lookupWorkloadKind(gk); k != nil {
		return *k, true
	}
	return WorkloadKind{}, false
}

func lookupWorkloadKind(gk schema.GroupKind) *WorkloadKind {
	for i := range workloadKinds {
		if k := &workloadKinds[i]; k.Group == gk.Group && k.Kind == gk.Kind {
			return k
		}
	}
	return nil
}

// IsWorkloadGroupKind reports whether objects of this group and kind are workloads.
func IsWorkloadGroupKind(gk schema.GroupKind) bool { return lookupWorkloadKind(gk) != nil }

// AddToScheme registers the API groups of the workload kinds and of the objects a Related
// view is built from (policy/v1, networking.k8s.io/v1): everything the engine reads.
func AddToScheme(s *runtime.Scheme) error {
	adds := []func(*runtime.Scheme) error{policyv1.AddToScheme, networkingv1.AddToScheme}
	for i := range workloadKinds {
		adds = append(adds, workloadKinds[i].AddToScheme)
	}
	for _, add := range adds {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}
