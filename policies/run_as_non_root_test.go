package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestRunAsNonRoot(t *testing.T) {
	const (
		podNonRoot     = secCtxDeploySpec + ".securityContext.runAsNonRoot"
		podUser        = secCtxDeploySpec + ".securityContext.runAsUser"
		setNonRoot     = "set runAsNonRoot: true on the pod or on each container"
		setUID         = "set runAsUser (such as 1000) on the pod or on each container; the kubelet cannot verify a non-numeric image USER"
		loomNonRoot    = secCtxDeploySpec + ".containers[0].securityContext.runAsNonRoot"
		loomUser       = secCtxDeploySpec + ".containers[0].securityContext.runAsUser"
		rootUserDetail = `container "loom" must not run as root (UID 0): set runAsUser to a non-zero UID such as 1000`
	)
	custom := runAsNonRoot(RunAsNonRootConfig{RunAsUser: 2000, RunAsGroup: 3000, FSGroup: 4000})
	wantPod := func(nonRoot bool, user, group, fsGroup int64) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			psc := s.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || *psc.RunAsNonRoot != nonRoot || psc.RunAsUser == nil || *psc.RunAsUser != user ||
				psc.RunAsGroup == nil || *psc.RunAsGroup != group || psc.FSGroup == nil || *psc.FSGroup != fsGroup {
				t.Errorf("pod securityContext = %+v, want runAsNonRoot %v, runAsUser %d, runAsGroup %d, fsGroup %d", psc, nonRoot, user, group, fsGroup)
			}
		}
	}
	noPodIdentity := func(s *corev1.PodSpec) {
		s.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: s.SecurityContext.SeccompProfile}
	}
	secCtxRun(t, runAsNonRoot(DefaultConfig().Policies.RunAsNonRoot), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant pod", kind: "Pod"},
		{name: "compliant cronjob", kind: "CronJob"},
		{
			name: "nothing set: one error per setting at pod level, naming init and regular containers",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext = nil
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
			},
			want: field.ErrorList{
				secCtxRequired(podNonRoot, `containers "migrate", "loom" must run as non-root: `+setNonRoot),
				secCtxRequired(podUser, `containers "migrate", "loom" must run as a numeric non-zero UID: `+setUID),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 1000, 1000),
		},
		{
			name: "pod: runAsNonRoot alone is not enough for a named image USER",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) { s.SecurityContext.RunAsUser = nil },
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".securityContext.runAsUser", `container "loom" must run as a numeric non-zero UID: `+setUID),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 1000, 1000),
		},
		{
			name: "cronjob: runAsUser set, runAsNonRoot missing",
			kind: "CronJob",
			edit: func(s *corev1.PodSpec) { s.SecurityContext.RunAsNonRoot = nil },
			want: field.ErrorList{
				secCtxRequired(secCtxCronJobSpec+".securityContext.runAsNonRoot", `container "loom" must run as non-root: `+setNonRoot),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 1000, 1000),
		},
		{
			name: "ephemeral containers count",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				noPodIdentity(s)
				s.Containers[0].SecurityContext.RunAsNonRoot = new(true)
				s.Containers[0].SecurityContext.RunAsUser = new(int64(1000))
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(secCtxContainer("debug"))}
			},
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".securityContext.runAsNonRoot", `container "debug" must run as non-root: `+setNonRoot),
				secCtxRequired(secCtxPodSpec+".securityContext.runAsUser", `container "debug" must run as a numeric non-zero UID: `+setUID),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 1000, 1000),
		},
		{
			name: "container values override a missing pod value",
			edit: func(s *corev1.PodSpec) {
				noPodIdentity(s)
				s.Containers[0].SecurityContext.RunAsNonRoot = new(true)
				s.Containers[0].SecurityContext.RunAsUser = new(int64(1000))
			},
		},
		{
			name: "container values override wrong pod values",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsNonRoot = new(false)
				s.SecurityContext.RunAsUser = new(int64(0))
				s.Containers[0].SecurityContext.RunAsNonRoot = new(true)
				s.Containers[0].SecurityContext.RunAsUser = new(int64(1000))
			},
		},
		{
			name: "explicit false and 0 on the pod are inherited and never overridden",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsNonRoot = new(false)
				s.SecurityContext.RunAsUser = new(int64(0))
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
			},
			want: field.ErrorList{
				secCtxInvalid(podNonRoot, false, `containers "migrate", "loom" must run as non-root but the pod sets runAsNonRoot: false; `+setNonRoot),
				secCtxInvalid(podUser, int64(0), `containers "migrate", "loom" must not run as root but the pod sets runAsUser: 0; set a non-zero UID such as 1000 on the pod or on each container`),
			},
			after: field.ErrorList{
				secCtxInvalid(podNonRoot, false, `containers "migrate", "loom" must run as non-root but the pod sets runAsNonRoot: false; `+setNonRoot),
				secCtxInvalid(podUser, int64(0), `containers "migrate", "loom" must not run as root but the pod sets runAsUser: 0; set a non-zero UID such as 1000 on the pod or on each container`),
			},
		},
		{
			name: "explicit container false and 0 are reported at the container and never overridden",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.RunAsNonRoot = new(false)
				s.Containers[0].SecurityContext.RunAsUser = new(int64(0))
			},
			want: field.ErrorList{
				secCtxInvalid(loomNonRoot, false, `container "loom" must run as non-root: set runAsNonRoot to true`),
				secCtxInvalid(loomUser, int64(0), rootUserDetail),
			},
			after: field.ErrorList{
				secCtxInvalid(loomNonRoot, false, `container "loom" must run as non-root: set runAsNonRoot to true`),
				secCtxInvalid(loomUser, int64(0), rootUserDetail),
			},
		},
		{
			name: "explicit container 0 stays while the fix fills the pod level",
			edit: func(s *corev1.PodSpec) {
				noPodIdentity(s)
				s.Containers[0].SecurityContext.RunAsUser = new(int64(0))
			},
			want: field.ErrorList{
				secCtxInvalid(loomUser, int64(0), rootUserDetail),
				secCtxRequired(podNonRoot, `container "loom" must run as non-root: `+setNonRoot),
			},
			fixed: true,
			after: field.ErrorList{secCtxInvalid(loomUser, int64(0), rootUserDetail)},
			verify: func(t *testing.T, s *corev1.PodSpec) {
				wantPod(true, 1000, 1000, 1000)(t, s)
				if u := s.Containers[0].SecurityContext.RunAsUser; u == nil || *u != 0 {
					t.Errorf("the fix changed the container's explicit runAsUser 0 to %v", u)
				}
			},
		},
		{
			name: "mixed: one container inherits, one overrides",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsUser = nil
				s.Containers = append(s.Containers, secCtxContainer("dolt"))
				s.Containers[1].SecurityContext.RunAsUser = new(int64(1000))
			},
			want: field.ErrorList{
				secCtxRequired(podUser, `container "loom" must run as a numeric non-zero UID: `+setUID),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 1000, 1000),
		},
		{
			name: "the fix never overrides explicit pod values",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsUser = nil
				s.SecurityContext.RunAsGroup = new(int64(5000))
				s.SecurityContext.FSGroup = new(int64(6000))
			},
			want: field.ErrorList{
				secCtxRequired(podUser, `container "loom" must run as a numeric non-zero UID: `+setUID),
			},
			fixed:  true,
			verify: wantPod(true, 1000, 5000, 6000),
		},
		{
			name:   "config: the fix uses the configured IDs",
			policy: &custom,
			edit:   func(s *corev1.PodSpec) { s.SecurityContext = nil },
			want: field.ErrorList{
				secCtxRequired(podNonRoot, `container "loom" must run as non-root: `+setNonRoot),
				secCtxRequired(podUser, `container "loom" must run as a numeric non-zero UID: set runAsUser (such as 2000) on the pod or on each container; the kubelet cannot verify a non-numeric image USER`),
			},
			fixed:  true,
			verify: wantPod(true, 2000, 3000, 4000),
		},
		{
			name: "windows pods are out of scope",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext = nil
				s.OS = &corev1.PodOS{Name: corev1.Windows}
			},
			verify: func(t *testing.T, s *corev1.PodSpec) {
				if s.SecurityContext != nil {
					t.Errorf("the fix set %+v on a windows pod", s.SecurityContext)
				}
			},
		},
		{
			name: "linux pods are in scope",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsUser = nil
				s.OS = &corev1.PodOS{Name: corev1.Linux}
			},
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".securityContext.runAsUser", `container "loom" must run as a numeric non-zero UID: `+setUID),
			},
			fixed: true,
		},
	})
}

// TestRunAsNonRootExceptions checks that a container waived by an exception is left out of
// the pod-level error's container list.
func TestRunAsNonRootExceptions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exceptions = []Exception{{
		Name: "debug-root", Policies: []string{"run-as-non-root"}, Namespace: "loom", Workload: "loom",
		Containers: []string{"debug"}, Owner: "platform", Reason: "debug image runs as root", Expires: "2099-01-01",
	}}
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	spec := secCtxSpec()
	spec.SecurityContext.RunAsUser = nil
	spec.Containers = append(spec.Containers, secCtxContainer("debug"))
	r := e.Evaluate(secCtxWorkload(t, "Deployment", spec))
	var got field.ErrorList
	for _, v := range r.Violations {
		if v.Policy == "run-as-non-root" {
			got = append(got, v.Error)
		}
	}
	secCtxAssertErrors(t, "Evaluate", got, field.ErrorList{
		secCtxRequired(secCtxDeploySpec+".securityContext.runAsUser",
			`container "loom" must run as a numeric non-zero UID: set runAsUser (such as 1000) on the pod or on each container; the kubelet cannot verify a non-numeric image USER`),
	})
}
