package policies

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ContainerKind says where a container sits in the pod spec.
type ContainerKind int

const (
	// Regular is an entry of spec.containers.
	Regular ContainerKind = iota
	// Init is an entry of spec.initContainers (sidecars included).
	Init
	// Ephemeral is an entry of spec.ephemeralContainers.
	Ephemeral
)

// ContainerRef is one container of a workload with its field path.
type ContainerRef struct {
	// Container aliases the object's container: a fix edits the object itself. For an
	// ephemeral container it aliases the EphemeralContainerCommon, which has the same layout.
	*corev1.Container
	Kind ContainerKind
	Path *field.Path
}

// LongRunning reports whether the container runs for the life of the pod: a regular
// container, or a restartable init container (a sidecar).
func (c ContainerRef) LongRunning() bool {
	switch c.Kind {
	case Regular:
		return true
	case Init:
		return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	}
	return false
}

// Workload is the policy-relevant view of a pod-owning object. Its pointers alias the
// object, so a fix edits the object itself.
type Workload struct {
	Object runtime.Object
	Kind   schema.GroupKind
	// Meta is the object's own metadata.
	Meta *metav1.ObjectMeta
	// Template is the pod template's metadata; for a Pod it is Meta.
	Template *metav1.ObjectMeta
	// TemplatePath is the field path of Template.
	TemplatePath *field.Path
	// Spec is the pod spec.
	Spec *corev1.PodSpec
	// SpecPath is spec, spec.template.spec or spec.jobTemplate.spec.template.spec.
	SpecPath *field.Path
	// Replicas is the desired replica count of a Deployment, StatefulSet or ReplicaSet
	// (nil when unset there, meaning 1); nil for every other kind.
	Replicas *int32
	// Related is a read-only view of the PodDisruptionBudgets and NetworkPolicies of the
	// workload's namespace, for the cross-object policies; nil when unknown, which is
	// always the case in admission. NewWorkload leaves it nil: the audit and the CLI set it.
	Related *Related

	kind *WorkloadKind
	// containers are the containers of this view: all of the pod spec's, or those an
	// exception does not waive (see Containers).
	containers []ContainerRef
	// waived maps the pod-security controls that exceptions waive in this view to the
	// containers they cover; a nil set means the whole control.
	waived map[string]map[string]bool
}

// waiveControls adds pod-security controls waived for some containers (nil: all of them)
// to waived, which it returns.
func waiveControls(waived map[string]map[string]bool, controls []string, containers map[string]bool) map[string]map[string]bool {
	if waived == nil {
		waived = map[string]map[string]bool{}
	}
	for _, id := range controls {
		cur, seen := waived[id]
		switch {
		case seen && cur == nil:
			// already wholly waived
		case containers == nil:
			waived[id] = nil
		default:
			if cur == nil {
				cur = map[string]bool{}
				waived[id] = cur
			}
			for c := range containers {
				cur[c] = true
			}
		}
	}
	return waived
}

// waivedControl returns the containers an exception takes out of a pod-security control,
// and whether it takes out the whole control.
func (w *Workload) waivedControl(id string) (containers map[string]bool, whole bool) {
	c, ok := w.waived[id]
	return c, ok && c == nil
}

// The kinds some policies single out: a Pod is the one workload that is its own pod
// template, can be a static pod's mirror and has its own restartPolicy; high-availability
// and pod-disruption-budget apply to Deployments and StatefulSets.
var (
	kindPod         = corev1.SchemeGroupVersion.WithKind("Pod").GroupKind()
	kindDeployment  = appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind()
	kindStatefulSet = appsv1.SchemeGroupVersion.WithKind("StatefulSet").GroupKind()
)

// NewWorkload returns the workload view of obj, or false when obj is not of a workload kind
// (see WorkloadKinds).
func NewWorkload(obj runtime.Object) (*Workload, bool) {
	for i := range workloadKinds {
		k := &workloadKinds[i]
		parts, ok := k.parts(obj)
		if !ok {
			continue
		}
		w := &Workload{Object: obj, Kind: k.GroupKind(), kind: k, Meta: parts.meta, Spec: parts.spec}
		if k.TemplatePath == nil {
			w.Template, w.TemplatePath, w.SpecPath = parts.meta, field.NewPath("metadata"), field.NewPath("spec")
		} else {
			w.Template, w.TemplatePath, w.SpecPath = parts.template, k.TemplatePath.Child("metadata"), k.TemplatePath.Child("spec")
		}
		if parts.replicas != nil {
			w.Replicas = replicasOf(*parts.replicas)
		}
		w.containers = containerRefs(w.Spec, w.SpecPath)
		return w, true
	}
	return nil, false
}

// replicasOf returns a non-nil count: unset means one replica.
func replicasOf(r *int32) *int32 {
	if r != nil {
		return r
	}
	one := int32(1)
	return &one
}

func containerRefs(spec *corev1.PodSpec, specPath *field.Path) []ContainerRef {
	n := len(spec.InitContainers) + len(spec.Containers) + len(spec.EphemeralContainers)
	if n == 0 {
		return nil
	}
	refs := make([]ContainerRef, 0, n)
	if len(spec.InitContainers) > 0 {
		p := specPath.Child("initContainers")
		for i := range spec.InitContainers {
			refs = append(refs, ContainerRef{Container: &spec.InitContainers[i], Kind: Init, Path: p.Index(i)})
		}
	}
	p := specPath.Child("containers")
	for i := range spec.Containers {
		refs = append(refs, ContainerRef{Container: &spec.Containers[i], Kind: Regular, Path: p.Index(i)})
	}
	if len(spec.EphemeralContainers) > 0 {
		p := specPath.Child("ephemeralContainers")
		for i := range spec.EphemeralContainers {
			// EphemeralContainerCommon has exactly Container's fields, so the
			// conversion is legal and lets every policy treat all three alike.
			c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
			refs = append(refs, ContainerRef{Container: c, Kind: Ephemeral, Path: p.Index(i)})
		}
	}
	return refs
}

// Containers returns the workload's init, regular and ephemeral containers in that order.
// In the view the engine hands a policy, the containers an exception waives for that
// policy are left out.
func (w *Workload) Containers() []ContainerRef { return w.containers }

// without returns a view of w without the named containers. The view aliases the same
// object; w is not changed.
func (w *Workload) without(names map[string]bool) *Workload {
	view := *w
	view.containers = make([]ContainerRef, 0, len(w.containers))
	for _, c := range w.containers {
		if !names[c.Name] {
			view.containers = append(view.containers, c)
		}
	}
	return &view
}

// Controlled reports whether a controller generated this object (it has a controller
// owner reference): a ReplicaSet of a Deployment, a Job of a CronJob, a Pod of a
// ReplicaSet, Job, StatefulSet or DaemonSet.
func (w *Workload) Controlled() bool {
	return metav1.GetControllerOfNoCopy(w.Meta) != nil
}

// Mirror reports whether the object claims to be a static pod's mirror: a Pod with the
// kubernetes.io/config.mirror annotation. The claim is only true when the node's kubelet
// makes it, which the object cannot tell; an adapter that knows the requester checks it
// (the webhook accepts it only from system:node:<spec.nodeName>).
func (w *Workload) Mirror() bool {
	if w.Kind != kindPod {
		return false
	}
	_, ok := w.Meta.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// RunsToCompletion reports whether the pod exits when its work is done (a Job, a CronJob,
// or a Pod whose restartPolicy is not Always), so that health probes do not apply.
func (w *Workload) RunsToCompletion() bool {
	if w.Kind == kindPod {
		return w.Spec.RestartPolicy != "" && w.Spec.RestartPolicy != corev1.RestartPolicyAlways
	}
	return w.kind != nil && w.kind.RunsToCompletion
}

// TemplatePinned reports whether the object's pod template must not change: a controller
// generated it and recognises it by that template (a Deployment's ReplicaSet).
func (w *Workload) TemplatePinned() bool {
	return w.kind != nil && w.kind.TemplatePinned && w.Controlled()
}

// podSecurityContext returns the pod's security context, creating it when create is true.
func (w *Workload) podSecurityContext(create bool) *corev1.PodSecurityContext {
	if w.Spec.SecurityContext == nil && create {
		w.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	return w.Spec.SecurityContext
}

// securityContext returns the container's security context, creating it when create is true.
func securityContext(c *corev1.Container, create bool) *corev1.SecurityContext {
	if c.SecurityContext == nil && create {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	return c.SecurityContext
}
