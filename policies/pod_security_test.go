package policies

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// podSecurityFindings renders a report's pod-security violations as "control field".
func podSecurityFindings(r Report) []string {
	var out []string
	for _, v := range r.Violations {
		if v.Policy == PodSecurityID {
			out = append(out, v.Origin+" "+v.Field)
		}
	}
	return out
}

// bareContainer strips the base container's security context: what a workload looks like
// before anyone thought about pod security.
func bareContainer(d *appsv1.Deployment) {
	d.Spec.Template.Spec.SecurityContext = nil
	d.Spec.Template.Spec.Containers[0].SecurityContext = nil
}

func addContainer(name string, sc *corev1.SecurityContext) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		c := d.Spec.Template.Spec.Containers[0].DeepCopy()
		c.Name, c.SecurityContext, c.Ports = name, sc, nil
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, *c)
	}
}

func TestPodSecurityFields(t *testing.T) {
	restrictedSC := func() *corev1.SecurityContext {
		return &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	tests := []struct {
		name            string
		level, version  string
		obj             func(t *testing.T) runtime.Object
		want            []string
		wantMessageLike string
	}{
		{
			name: "base Loom Deployment passes restricted", level: "restricted", version: "latest",
			obj: func(t *testing.T) runtime.Object { return catalogDeployment(t) },
		},
		{
			name: "non-default capabilities of the second container, at each added capability", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, addContainer("debug", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CHOWN", "SYS_ADMIN", "NET_RAW"}}}))
			},
			want: []string{
				"capabilities_baseline spec.template.spec.containers[1].securityContext.capabilities.add[1]",
				"capabilities_baseline spec.template.spec.containers[1].securityContext.capabilities.add[2]",
			},
			wantMessageLike: `PodSecurity "baseline:latest" control capabilities_baseline: non-default capabilities (container "debug" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)`,
		},
		{
			name: "host namespaces, hostPath volume and host port", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					s := &d.Spec.Template.Spec
					s.HostPID, s.HostIPC = true, true
					s.Volumes = append(s.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}})
					s.Containers[0].Ports[0].HostPort = 8081
				})
			},
			want: []string{
				"hostNamespaces spec.template.spec.hostPID",
				"hostNamespaces spec.template.spec.hostIPC",
				"hostPathVolumes spec.template.spec.volumes[2].hostPath",
				"hostPorts spec.template.spec.containers[0].ports[0].hostPort",
			},
		},
		{
			name: "restricted on a bare container: pod-level fields where one setting covers every container", level: "restricted", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, bareContainer, addContainer("sidecar", restrictedSC()))
			},
			want: []string{
				"allowPrivilegeEscalation spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
				"capabilities_restricted spec.template.spec.containers[0].securityContext.capabilities.drop",
				"runAsNonRoot spec.template.spec.securityContext.runAsNonRoot",
				"seccompProfile_restricted spec.template.spec.securityContext.seccompProfile",
			},
		},
		{
			name: "restricted: explicit bad values at the container and the pod", level: "restricted", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					s := &d.Spec.Template.Spec
					s.SecurityContext.RunAsUser = ptr.To(int64(0))
					s.Containers[0].SecurityContext.RunAsNonRoot = ptr.To(false)
					s.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
					s.Volumes = append(s.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}})
				})
			},
			want: []string{
				"restrictedVolumes spec.template.spec.volumes[2]",
				"runAsNonRoot spec.template.spec.containers[0].securityContext.runAsNonRoot",
				"runAsUser spec.template.spec.securityContext.runAsUser",
				"seccompProfile_restricted spec.template.spec.containers[0].securityContext.seccompProfile.type",
			},
		},
		{
			name: "a CronJob's path goes through its job template", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) {
					cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
				})
			},
			want: []string{"privileged spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"},
		},
		{
			name: "a bare Pod", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					p.Spec.SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}
				})
			},
			want: []string{"windowsHostProcess spec.securityContext.windowsOptions.hostProcess"},
		},
		{
			name: "v1.0 reads the seccomp annotations of the pod template", level: "baseline", version: "v1.0",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Annotations = map[string]string{
						corev1.SeccompContainerAnnotationKeyPrefix + "loom": "unconfined",
						corev1.SeccompPodAnnotationKey:                      "runtime/default",
					}
				})
			},
			want: []string{"seccompProfile_baseline spec.template.metadata.annotations[container.seccomp.security.alpha.kubernetes.io/loom]"},
		},
		{
			name: "AppArmor annotation and field", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "loom": "unconfined"}
					d.Spec.Template.Spec.Containers[0].SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
				})
			},
			want: []string{
				"appArmorProfile spec.template.spec.containers[0].securityContext.appArmorProfile.type",
				"appArmorProfile spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/loom]",
			},
		},
		{
			name: "a probe host is allowed before v1.34", level: "baseline", version: "v1.33",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Host = "10.0.0.1" })
			},
		},
		{
			name: "and forbidden from v1.34", level: "baseline", version: "v1.34",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Host = "10.0.0.1"
					d.Spec.Template.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Host: "10.0.0.2"}}}
				})
			},
			want: []string{
				"hostProbesAndHostLifecycle spec.template.spec.containers[0].livenessProbe.httpGet.host",
				"hostProbesAndHostLifecycle spec.template.spec.containers[0].lifecycle.preStop.tcpSocket.host",
			},
		},
		{
			name: "only the sysctls the version forbids", level: "baseline", version: "v1.28",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.SecurityContext.Sysctls = []corev1.Sysctl{
						{Name: "net.ipv4.ip_local_reserved_ports", Value: "8081"}, // allowed from v1.27
						{Name: "net.ipv4.tcp_keepalive_time", Value: "60"},        // allowed from v1.29
					}
				})
			},
			want: []string{"sysctls spec.template.spec.securityContext.sysctls[1]"},
		},
		{
			name: "a volume without a source is the emptyDir the API server makes of it", level: "restricted", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "scratch"})
				})
			},
		},
		{
			name: "under hostNetwork an unset hostPort is the containerPort the API server stores", level: "baseline", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					p.Spec.HostNetwork = true
					p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
						Name: "debug", Image: "busybox:1.37", Ports: []corev1.ContainerPort{{ContainerPort: 9000}},
					}}}
				})
			},
			want: []string{"hostNamespaces spec.hostNetwork", "hostPorts spec.containers[0].ports[0].hostPort"},
		},
		{
			name: "privileged level checks nothing", level: "privileged", version: "latest",
			obj: func(t *testing.T) runtime.Object {
				return catalogDeployment(t, bareContainer, func(d *appsv1.Deployment) { d.Spec.Template.Spec.HostNetwork = true })
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := podSecurityEngine(t, tt.level, tt.version)
			w, _ := NewWorkload(tt.obj(t))
			r := e.Evaluate(w, w.Meta.Namespace)
			if got := podSecurityFindings(r); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if tt.wantMessageLike != "" {
				if len(r.Violations) == 0 || r.Violations[0].Detail != tt.wantMessageLike {
					t.Errorf("message:%s\nwant: %s", messages(r), tt.wantMessageLike)
				}
			}
			for _, v := range r.Violations {
				if v.Action != ActionEnforce || v.Type != "FieldValueForbidden" {
					t.Errorf("%s: want an enforced Forbidden error, got %s %s", v.Message(), v.Action, v.Type)
				}
			}
		})
	}
}

// TestPodSecurityNamespaces pins one namespace to an older version and another to
// restricted, through namespaces[].podSecurity; the first matching entry decides.
func TestPodSecurityNamespaces(t *testing.T) {
	cfg, errs := LoadConfig([]byte(`
defaultAction: "off"
policies:
  pod-security: {action: enforce, level: baseline, version: latest}
namespaces:
  - names: [legacy]
    podSecurity: {level: baseline, version: v1.33}
  - names: [secure-*]
    podSecurity: {level: restricted, version: latest}
  - names: [secure-but-off]
    podSecurity: {level: privileged, version: latest}
`))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	// The object says namespace loom; the namespace it is evaluated in (the admission
	// request's) decides.
	probeHost := func() *Workload {
		w, _ := NewWorkload(catalogDeployment(t, bareContainer, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Host = "10.0.0.1"
		}))
		return w
	}
	for ns, want := range map[string][]string{
		"loom":   {"hostProbesAndHostLifecycle spec.template.spec.containers[0].readinessProbe.httpGet.host"},
		"legacy": nil,
		"secure-payments": {
			"hostProbesAndHostLifecycle spec.template.spec.containers[0].readinessProbe.httpGet.host",
			"allowPrivilegeEscalation spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
			"capabilities_restricted spec.template.spec.containers[0].securityContext.capabilities.drop",
			"runAsNonRoot spec.template.spec.securityContext.runAsNonRoot",
			"seccompProfile_restricted spec.template.spec.securityContext.seccompProfile",
		},
		// secure-* matches first, so the later entry never applies.
		"secure-but-off": {
			"hostProbesAndHostLifecycle spec.template.spec.containers[0].readinessProbe.httpGet.host",
			"allowPrivilegeEscalation spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
			"capabilities_restricted spec.template.spec.containers[0].securityContext.capabilities.drop",
			"runAsNonRoot spec.template.spec.securityContext.runAsNonRoot",
			"seccompProfile_restricted spec.template.spec.securityContext.seccompProfile",
		},
	} {
		if got := podSecurityFindings(e.Evaluate(probeHost(), ns)); !slices.Equal(got, want) {
			t.Errorf("namespace %s: got %q, want %q", ns, got, want)
		}
	}
}

// TestPodSecurityExceptions waives controls wholly and per container, and stops waiving
// once an exception expires.
func TestPodSecurityExceptions(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cfg, errs := LoadConfig([]byte(`
defaultAction: "off"
policies:
  pod-security: {action: enforce, level: restricted, version: latest}
exceptions:
  - name: node-agent-hostpath
    policies: [pod-security]
    controls: [hostPathVolumes, restrictedVolumes]
    namespace: loom
    workload: loom
    owner: platform
    reason: reads the node's logs
    expires: "2027-01-31"
  - name: debug-caps
    policies: [pod-security]
    controls: [capabilities_restricted]
    containers: [debug]
    namespace: loom
    workload: loom
    owner: sre
    reason: tcpdump needs NET_RAW
    expires: "2027-01-31"
  - name: old-sysctl
    policies: [pod-security]
    controls: [sysctls]
    namespace: loom
    workload: loom
    owner: sre
    reason: expired last week
    expires: "2026-11-23"
`))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	e, err := NewEngine(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewWorkload(catalogDeployment(t,
		addContainer("debug", &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}),
		addContainer("worker", &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}, Drop: []corev1.Capability{"ALL"}}}),
		func(d *appsv1.Deployment) {
			s := &d.Spec.Template.Spec
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}})
			s.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}
		}))
	r := e.Evaluate(w, w.Meta.Namespace)
	want := []string{
		"sysctls spec.template.spec.securityContext.sysctls[0]",
		"capabilities_restricted spec.template.spec.containers[2].securityContext.capabilities.add[0]",
	}
	if got := podSecurityFindings(r); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	var waivers []string
	for _, wv := range r.Waivers {
		waivers = append(waivers, wv.Exception)
	}
	if want := []string{"node-agent-hostpath", "debug-caps"}; !slices.Equal(waivers, want) {
		t.Errorf("waivers %q, want %q", waivers, want)
	}
}

func TestPodSecurityConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		want         []string
	}{
		{"unknown level", "policies:\n  pod-security: {level: strict}\n", []string{`policies.pod-security.level: Unsupported value: "strict"`}},
		{"bad version", "policies:\n  pod-security: {version: \"1.30\"}\n", []string{`policies.pod-security.version: Invalid value: "1.30": must be "latest" or "v1.N"`}},
		{"namespace level", "namespaces:\n  - names: [a]\n    podSecurity: {level: baseline, version: v2}\n", []string{`namespaces[0].podSecurity.version: Invalid value: "v2"`}},
		{"unknown control", exceptionYAML("[pod-security]", "[hostPath]"), []string{`exceptions[0].controls[0]: Unsupported value: "hostPath"`}},
		{"controls need pod-security alone", exceptionYAML("[pod-security, host-isolation]", "[hostPathVolumes]"), []string{`exceptions[0].policies: Invalid value: `, "must be exactly [pod-security] when controls are set"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := LoadConfig([]byte(tt.config))
			if len(errs) == 0 {
				t.Fatal("want an error")
			}
			got := errs.ToAggregate().Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q lacks %q", got, w)
				}
			}
		})
	}
}

// TestPodSecurityVersionOmitted: an omitted version means latest, in policies.pod-security
// and in a namespaces entry alike (the in-tree enforce-version label's default); an
// explicitly malformed one is an error in both.
func TestPodSecurityVersionOmitted(t *testing.T) {
	const (
		policy    = "defaultAction: \"off\"\npolicies:\n  pod-security: {action: enforce, level: restricted%s}\n"
		namespace = "defaultAction: \"off\"\npolicies:\n  pod-security: {action: enforce, level: privileged}\nnamespaces:\n  - names: [x]\n    podSecurity: {level: restricted%s}\n"
	)
	// The base Deployment with a bare container violates restricted (and baseline's
	// host probes); what latest finds is the reference.
	w, _ := NewWorkload(catalogDeployment(t, bareContainer, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Host = "10.0.0.1"
	}))
	findings := func(t *testing.T, config string) []string {
		t.Helper()
		cfg, errs := LoadConfig([]byte(config))
		if len(errs) > 0 {
			t.Fatal(errs.ToAggregate())
		}
		e, err := NewEngine(cfg, fixtureClock)
		if err != nil {
			t.Fatal(err)
		}
		return podSecurityFindings(e.Evaluate(w, "x"))
	}
	for _, tt := range []struct {
		name, template, version string
		err                     string // empty: accepted, and evaluated as latest
	}{
		{"policy, version omitted", policy, "", ""},
		{"policy, version empty", policy, `, version: ""`, ""},
		{"policy, version latest", policy, ", version: latest", ""},
		{"policy, version malformed", policy, `, version: "1.30"`, `policies.pod-security.version: Invalid value: "1.30": must be "latest" or "v1.N"`},
		{"policy, version not a string of the form", policy, ", version: v2", `policies.pod-security.version: Invalid value: "v2"`},
		{"namespace, version omitted", namespace, "", ""},
		{"namespace, version empty", namespace, `, version: ""`, ""},
		{"namespace, version latest", namespace, ", version: latest", ""},
		{"namespace, version malformed", namespace, `, version: "1.30"`, `namespaces[0].podSecurity.version: Invalid value: "1.30": must be "latest" or "v1.N"`},
		{"namespace, version latest misspelt", namespace, ", version: Latest", `namespaces[0].podSecurity.version: Invalid value: "Latest"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			config := fmt.Sprintf(tt.template, tt.version)
			if tt.err != "" {
				_, errs := LoadConfig([]byte(config))
				if got := errs.ToAggregate(); got == nil || !strings.Contains(got.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", got, tt.err)
				}
				return
			}
			want := findings(t, fmt.Sprintf(tt.template, ", version: latest"))
			if len(want) < 2 {
				t.Fatalf("restricted finds %q: the workload proves nothing", want)
			}
			if got := findings(t, config); !slices.Equal(got, want) {
				t.Errorf("got %q, want latest's %q", got, want)
			}
		})
	}
}

func exceptionYAML(policies, controls string) string {
	return fmt.Sprintf(`exceptions:
  - name: x
    policies: %s
    controls: %s
    namespace: loom
    workload: loom
    owner: me
    reason: because
    expires: "2027-01-01"
`, policies, controls)
}

// TestPodSecurityOneViolationPerField runs the Loom profile with pod-security at restricted:
// where a Loom policy reports the same field, one violation remains, the one with the
// stronger action (the Loom policy's on a tie).
func TestPodSecurityOneViolationPerField(t *testing.T) {
	obj := func() *Workload {
		w, _ := NewWorkload(catalogDeployment(t, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
			d.Spec.Template.Spec.HostNetwork = true
		}))
		return w
	}
	for _, tt := range []struct {
		name, config string
		want         []string
	}{
		{
			"tie: the Loom policies keep their violations",
			"policies:\n  pod-security: {level: restricted}\n",
			[]string{
				"no-privilege-escalation enforce spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
				"host-isolation enforce spec.template.spec.hostNetwork",
				"host-isolation enforce spec.template.spec.containers[0].ports[0].hostPort",
			},
		},
		{
			"pod-security enforces where the Loom policy only audits",
			"policies:\n  pod-security: {level: restricted}\n  no-privilege-escalation: {action: audit}\n",
			[]string{
				"host-isolation enforce spec.template.spec.hostNetwork",
				"host-isolation enforce spec.template.spec.containers[0].ports[0].hostPort",
				"pod-security enforce spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
			},
		},
		{
			"a Loom policy switched off leaves the field to pod-security",
			"policies:\n  pod-security: {level: restricted}\n  host-isolation: {action: \"off\"}\n",
			[]string{
				"no-privilege-escalation enforce spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
				// Under hostNetwork the API server stores the containerPort as hostPort.
				"pod-security enforce spec.template.spec.hostNetwork",
				"pod-security enforce spec.template.spec.containers[0].ports[0].hostPort",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := LoadConfig([]byte(tt.config))
			if len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			e, err := NewEngine(cfg, fixtureClock)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range e.Evaluate(obj(), "loom").Violations {
				got = append(got, v.Policy+" "+string(v.Action)+" "+v.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestPodSecurityFixesReachRestricted: the Loom fixes make a workload without any security
// settings pass restricted; what they never fix (explicit bad values) stays reported.
func TestPodSecurityFixesReachRestricted(t *testing.T) {
	cfg, errs := LoadConfig([]byte("policies:\n  pod-security: {level: restricted}\n"))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(*appsv1.Deployment)
		want []string
	}{
		{"no security settings at all", func(d *appsv1.Deployment) {
			bareContainer(d)
			addContainer("sidecar", nil)(d)
			d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "ghcr.io/loom/init:1.0"}}
		}, nil},
		{"explicit values are never overridden", func(d *appsv1.Deployment) {
			bareContainer(d)
			d.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(true),
				RunAsNonRoot:             ptr.To(false),
			}
		}, []string{
			"allowPrivilegeEscalation spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
			"runAsNonRoot spec.template.spec.containers[0].securityContext.runAsNonRoot",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := NewWorkload(catalogDeployment(t, tt.edit))
			e.Mutate(w, w.Meta.Namespace)
			// The Loom policies report these fields too; turn them off to see pod-security's view.
			ps := podSecurityEngine(t, "restricted", "latest")
			if got := podSecurityFindings(ps.Evaluate(w, w.Meta.Namespace)); !slices.Equal(got, tt.want) {
				t.Errorf("after Mutate: got %q, want %q", got, tt.want)
			}
		})
	}
}
