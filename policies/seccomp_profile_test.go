package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestSeccompProfile(t *testing.T) {
	const (
		setType = `set seccompProfile.type to "RuntimeDefault" or "Localhost"`
		onPod   = " on the pod or on each container"
	)
	pod := secCtxDeploySpec + ".securityContext.seccompProfile"
	loom := secCtxDeploySpec + ".containers[0].securityContext.seccompProfile"
	profile := func(typ corev1.SeccompProfileType, name ...string) *corev1.SeccompProfile {
		p := &corev1.SeccompProfile{Type: typ}
		if len(name) > 0 {
			p.LocalhostProfile = &name[0]
		}
		return p
	}
	setPod := func(p *corev1.SeccompProfile) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = p }
	}
	setLoom := func(p *corev1.SeccompProfile) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.SeccompProfile = p }
	}
	wantPod := func(t *testing.T, s *corev1.PodSpec) {
		t.Helper()
		if s.SecurityContext == nil || s.SecurityContext.SeccompProfile == nil || *s.SecurityContext.SeccompProfile != *profile(corev1.SeccompProfileTypeRuntimeDefault) {
			t.Errorf("pod securityContext = %+v, want seccompProfile RuntimeDefault", s.SecurityContext)
		}
	}
	localhostOnly := seccompProfile(SeccompProfileConfig{AllowedTypes: []string{"Localhost"}})
	runtimeDefaultOnly := seccompProfile(SeccompProfileConfig{AllowedTypes: []string{"RuntimeDefault"}})
	unconfinedOnPod := `container "loom" must not run with seccomp profile "Unconfined" (set on the pod); ` + setType + onPod

	secCtxRun(t, seccompProfile(DefaultConfig().Policies.SeccompProfile), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant cronjob", kind: "CronJob"},
		{name: "pod-level Localhost with a profile", edit: setPod(profile(corev1.SeccompProfileTypeLocalhost, "profiles/loom.json"))},
		{
			name: "container overrides a bad pod profile",
			edit: func(s *corev1.PodSpec) {
				setPod(profile(corev1.SeccompProfileTypeUnconfined))(s)
				setLoom(profile(corev1.SeccompProfileTypeRuntimeDefault))(s)
			},
		},
		{
			name: "unset everywhere: one pod-level error naming init and regular containers",
			edit: func(s *corev1.PodSpec) {
				setPod(nil)(s)
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
			},
			want:   field.ErrorList{secCtxRequired(pod, `containers "migrate", "loom" must run under a seccomp profile: `+setType+onPod)},
			fixed:  true,
			verify: wantPod,
		},
		{
			name:   "pod without a security context: the fix creates it",
			kind:   "Pod",
			edit:   func(s *corev1.PodSpec) { s.SecurityContext = nil },
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".securityContext.seccompProfile", `container "loom" must run under a seccomp profile: `+setType+onPod)},
			fixed:  true,
			verify: wantPod,
		},
		{
			name: "an ephemeral container inherits; the others have their own",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				setPod(nil)(s)
				setLoom(profile(corev1.SeccompProfileTypeRuntimeDefault))(s)
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(corev1.Container{Name: "debug", Image: "busybox:1.37"})}
			},
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".securityContext.seccompProfile", `container "debug" must run under a seccomp profile: `+setType+onPod)},
			fixed:  true,
			verify: wantPod,
		},
		{
			name: "every container has its own profile: nothing to fix at pod level",
			edit: func(s *corev1.PodSpec) {
				setPod(nil)(s)
				setLoom(profile(corev1.SeccompProfileTypeRuntimeDefault))(s)
			},
		},
		{
			name:  "explicit Unconfined on the pod is never overridden",
			kind:  "CronJob",
			edit:  setPod(profile(corev1.SeccompProfileTypeUnconfined)),
			want:  field.ErrorList{secCtxInvalid(secCtxCronJobSpec+".securityContext.seccompProfile.type", "Unconfined", unconfinedOnPod)},
			after: field.ErrorList{secCtxInvalid(secCtxCronJobSpec+".securityContext.seccompProfile.type", "Unconfined", unconfinedOnPod)},
		},
		{
			name: "explicit Unconfined on a container is reported there",
			edit: setLoom(profile(corev1.SeccompProfileTypeUnconfined)),
			want: field.ErrorList{secCtxInvalid(loom+".type", "Unconfined",
				`container "loom" must not run with seccomp profile "Unconfined"; `+setType)},
			after: field.ErrorList{secCtxInvalid(loom+".type", "Unconfined",
				`container "loom" must not run with seccomp profile "Unconfined"; `+setType)},
		},
		{
			name: "explicit container Unconfined and inherited unset pod profile",
			edit: func(s *corev1.PodSpec) {
				setPod(nil)(s)
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
				setLoom(profile(corev1.SeccompProfileTypeUnconfined))(s)
			},
			want: field.ErrorList{
				secCtxInvalid(loom+".type", "Unconfined", `container "loom" must not run with seccomp profile "Unconfined"; `+setType),
				secCtxRequired(pod, `container "migrate" must run under a seccomp profile: `+setType+onPod),
			},
			fixed: true,
			after: field.ErrorList{
				secCtxInvalid(loom+".type", "Unconfined", `container "loom" must not run with seccomp profile "Unconfined"; `+setType),
			},
			verify: wantPod,
		},
		{
			name: "a Localhost profile must be named: container",
			edit: setLoom(profile(corev1.SeccompProfileTypeLocalhost)),
			want: field.ErrorList{secCtxRequired(loom+".localhostProfile",
				`container "loom" must run with a named Localhost seccomp profile: set localhostProfile to the profile's file`)},
			after: field.ErrorList{secCtxRequired(loom+".localhostProfile",
				`container "loom" must run with a named Localhost seccomp profile: set localhostProfile to the profile's file`)},
		},
		{
			name: "a Localhost profile must be named: pod",
			edit: setPod(profile(corev1.SeccompProfileTypeLocalhost, "")),
			want: field.ErrorList{secCtxRequired(pod+".localhostProfile",
				`container "loom" must run with a named Localhost seccomp profile (set on the pod): set localhostProfile to the profile's file`)},
			after: field.ErrorList{secCtxRequired(pod+".localhostProfile",
				`container "loom" must run with a named Localhost seccomp profile (set on the pod): set localhostProfile to the profile's file`)},
		},
		{
			name:   "config: only Localhost allowed",
			policy: &localhostOnly,
			want: field.ErrorList{secCtxInvalid(pod+".type", "RuntimeDefault",
				`container "loom" must not run with seccomp profile "RuntimeDefault" (set on the pod); set seccompProfile.type to "Localhost" on the pod or on each container`)},
			after: field.ErrorList{secCtxInvalid(pod+".type", "RuntimeDefault",
				`container "loom" must not run with seccomp profile "RuntimeDefault" (set on the pod); set seccompProfile.type to "Localhost" on the pod or on each container`)},
		},
		{
			name:   "config: only Localhost allowed, the fix cannot invent a profile",
			policy: &localhostOnly,
			edit:   setPod(nil),
			want: field.ErrorList{secCtxRequired(pod,
				`container "loom" must run under a seccomp profile: set seccompProfile.type to "Localhost" on the pod or on each container`)},
			after: field.ErrorList{secCtxRequired(pod,
				`container "loom" must run under a seccomp profile: set seccompProfile.type to "Localhost" on the pod or on each container`)},
		},
		{
			name:   "config: only RuntimeDefault allowed",
			policy: &runtimeDefaultOnly,
			edit:   setLoom(profile(corev1.SeccompProfileTypeLocalhost, "profiles/loom.json")),
			want: field.ErrorList{secCtxInvalid(loom+".type", "Localhost",
				`container "loom" must not run with seccomp profile "Localhost"; set seccompProfile.type to "RuntimeDefault"`)},
			after: field.ErrorList{secCtxInvalid(loom+".type", "Localhost",
				`container "loom" must not run with seccomp profile "Localhost"; set seccompProfile.type to "RuntimeDefault"`)},
		},
		{
			name: "windows pods are out of scope",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.OS = &corev1.PodOS{Name: corev1.Windows}
				s.SecurityContext = nil
			},
		},
	})
}
