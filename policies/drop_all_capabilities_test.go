package policies

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDropAllCapabilities(t *testing.T) {
	const (
		drop     = ".securityContext.capabilities.drop"
		add      = ".securityContext.capabilities.add"
		mustDrop = ` must drop "ALL" capabilities`
		hint     = `; it may add only "NET_BIND_SERVICE", and only with a containerPort below 1024`
		noLow    = `: it declares no containerPort below 1024`
	)
	loom := secCtxDeploySpec + ".containers[0]"
	setAdd := func(caps ...corev1.Capability) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities.Add = caps }
	}
	lowPort := func(s *corev1.PodSpec) {
		s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{Name: "https", ContainerPort: 443})
	}
	wantDrop := func(want ...corev1.Capability) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			if got := s.Containers[0].SecurityContext.Capabilities.Drop; !slices.Equal(got, want) {
				t.Errorf("drop = %q, want %q", got, want)
			}
		}
	}
	none := dropAllCapabilities(DropAllCapabilitiesConfig{})
	sysTime := dropAllCapabilities(DropAllCapabilitiesConfig{AllowedAdd: []string{"SYS_TIME", "chown"}})
	several := dropAllCapabilities(DropAllCapabilitiesConfig{AllowedAdd: []string{"cap_chown", "NET_BIND_SERVICE"}})
	secCtxRun(t, dropAllCapabilities(DefaultConfig().Policies.DropAllCapabilities), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant pod", kind: "Pod"},
		{
			name:   "drop missing",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil },
			want:   field.ErrorList{secCtxRequired(loom+drop, `container "loom"`+mustDrop)},
			fixed:  true,
			verify: wantDrop("ALL"),
		},
		{
			name:   "no security context: the fix creates it",
			kind:   "CronJob",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = nil },
			want:   field.ErrorList{secCtxRequired(secCtxCronJobSpec+".containers[0]"+drop, `container "loom"`+mustDrop)},
			fixed:  true,
			verify: wantDrop("ALL"),
		},
		{
			name: "other drops are kept, ALL is appended",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
			},
			want:   field.ErrorList{secCtxRequired(loom+drop, `container "loom"`+mustDrop)},
			fixed:  true,
			verify: wantDrop("NET_RAW", "ALL"),
		},
		{
			// As in the Pod Security Standards, "ALL" is matched exactly.
			name: "lowercase all does not count",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.Capabilities.Drop = []corev1.Capability{"all"}
			},
			want:   field.ErrorList{secCtxRequired(loom+drop, `container "loom"`+mustDrop)},
			fixed:  true,
			verify: wantDrop("all", "ALL"),
		},
		{
			name: "init and ephemeral containers",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{{Name: "migrate", Image: "ghcr.io/jordanhubbard/loom:0.9.3"}}
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(corev1.Container{Name: "debug", Image: "busybox:1.37"})}
			},
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".initContainers[0]"+drop, `container "migrate"`+mustDrop),
				secCtxRequired(secCtxPodSpec+".ephemeralContainers[0]"+drop, `container "debug"`+mustDrop),
			},
			fixed: true,
			verify: func(t *testing.T, s *corev1.PodSpec) {
				if !dropsAll(s.InitContainers[0].SecurityContext.Capabilities) || !dropsAll(s.EphemeralContainers[0].SecurityContext.Capabilities) {
					t.Error("the fix did not drop ALL in the init and ephemeral containers")
				}
			},
		},
		{
			name: "forbidden adds are reported at their index and never removed",
			edit: setAdd("SYS_ADMIN", "NET_RAW"),
			want: field.ErrorList{
				secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "SYS_ADMIN"`+hint),
				secCtxForbidden(loom+add+"[1]", `container "loom" must not add capability "NET_RAW"`+hint),
			},
			after: field.ErrorList{
				secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "SYS_ADMIN"`+hint),
				secCtxForbidden(loom+add+"[1]", `container "loom" must not add capability "NET_RAW"`+hint),
			},
		},
		{
			name: "missing drop and a forbidden add: the fix repairs the drop only",
			kind: "CronJob",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"CAP_SYS_PTRACE"}}
			},
			want: field.ErrorList{
				secCtxRequired(secCtxCronJobSpec+".containers[0]"+drop, `container "loom"`+mustDrop),
				secCtxForbidden(secCtxCronJobSpec+".containers[0]"+add+"[0]", `container "loom" must not add capability "CAP_SYS_PTRACE"`+hint),
			},
			fixed: true,
			after: field.ErrorList{
				secCtxForbidden(secCtxCronJobSpec+".containers[0]"+add+"[0]", `container "loom" must not add capability "CAP_SYS_PTRACE"`+hint),
			},
		},
		{
			name: "NET_BIND_SERVICE without a port below 1024 (Loom's 8081)",
			edit: setAdd("NET_BIND_SERVICE"),
			want: field.ErrorList{secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "NET_BIND_SERVICE"`+noLow)},
			after: field.ErrorList{
				secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "NET_BIND_SERVICE"`+noLow),
			},
		},
		{
			name: "NET_BIND_SERVICE with a port below 1024",
			edit: func(s *corev1.PodSpec) { setAdd("NET_BIND_SERVICE")(s); lowPort(s) },
		},
		{
			name: "CAP_ prefix and case are accepted",
			edit: func(s *corev1.PodSpec) {
				setAdd("cap_net_bind_service", "CAP_NET_BIND_SERVICE", "Net_Bind_Service")(s)
				lowPort(s)
			},
		},
		{
			name: "the port must be the container's own",
			edit: func(s *corev1.PodSpec) {
				s.Containers = append(s.Containers, secCtxContainer("proxy"))
				s.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
				setAdd("CAP_NET_BIND_SERVICE")(s)
			},
			want: field.ErrorList{secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "CAP_NET_BIND_SERVICE"`+noLow)},
			after: field.ErrorList{
				secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "CAP_NET_BIND_SERVICE"`+noLow),
			},
		},
		{
			name:   "config: an empty allowedAdd forbids every add",
			policy: &none,
			edit:   func(s *corev1.PodSpec) { setAdd("NET_BIND_SERVICE")(s); lowPort(s) },
			want:   field.ErrorList{secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "NET_BIND_SERVICE"`)},
			after:  field.ErrorList{secCtxForbidden(loom+add+"[0]", `container "loom" must not add capability "NET_BIND_SERVICE"`)},
		},
		{
			name:   "config: other capabilities need no port, any case",
			policy: &sysTime,
			edit:   setAdd("SYS_TIME", "CAP_CHOWN", "NET_BIND_SERVICE"),
			want: field.ErrorList{
				secCtxForbidden(loom+add+"[2]", `container "loom" must not add capability "NET_BIND_SERVICE"; it may add only "SYS_TIME" or "CHOWN"`),
			},
			after: field.ErrorList{
				secCtxForbidden(loom+add+"[2]", `container "loom" must not add capability "NET_BIND_SERVICE"; it may add only "SYS_TIME" or "CHOWN"`),
			},
		},
		{
			name:   "config: names are normalised; NET_BIND_SERVICE keeps its port condition",
			policy: &several,
			edit:   setAdd("CHOWN", "NET_BIND_SERVICE", "SETUID"),
			want: field.ErrorList{
				secCtxForbidden(loom+add+"[1]", `container "loom" must not add capability "NET_BIND_SERVICE"`+noLow),
				secCtxForbidden(loom+add+"[2]", `container "loom" must not add capability "SETUID"; it may add only "CHOWN" or "NET_BIND_SERVICE" ("NET_BIND_SERVICE" only with a containerPort below 1024)`),
			},
			after: field.ErrorList{
				secCtxForbidden(loom+add+"[1]", `container "loom" must not add capability "NET_BIND_SERVICE"`+noLow),
				secCtxForbidden(loom+add+"[2]", `container "loom" must not add capability "SETUID"; it may add only "CHOWN" or "NET_BIND_SERVICE" ("NET_BIND_SERVICE" only with a containerPort below 1024)`),
			},
		},
		{
			name: "windows pods are out of scope",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.OS = &corev1.PodOS{Name: corev1.Windows}
				s.Containers[0].SecurityContext = nil
			},
		},
	})
}
