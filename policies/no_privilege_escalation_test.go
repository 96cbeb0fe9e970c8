package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNoPrivilegeEscalation(t *testing.T) {
	const (
		ape     = ".securityContext.allowPrivilegeEscalation"
		priv    = ".securityContext.privileged"
		unset   = " must set allowPrivilegeEscalation: false (unset means true)"
		allowed = " must not allow privilege escalation: set allowPrivilegeEscalation to false"
	)
	loom := secCtxDeploySpec + ".containers[0]"
	wantAPE := func(path string, want *bool) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			var c *corev1.Container
			switch path {
			case "containers[0]":
				c = &s.Containers[0]
			case "initContainers[0]":
				c = &s.InitContainers[0]
			case "ephemeralContainers[0]":
				c = (*corev1.Container)(&s.EphemeralContainers[0].EphemeralContainerCommon)
			}
			var got *bool
			if c.SecurityContext != nil {
				got = c.SecurityContext.AllowPrivilegeEscalation
			}
			if (got == nil) != (want == nil) || (got != nil && *got != *want) {
				t.Errorf("%s allowPrivilegeEscalation = %v, want %v", path, got, want)
			}
		}
	}
	secCtxRun(t, noPrivilegeEscalation(Settings{}), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant cronjob", kind: "CronJob"},
		{
			name:   "unset is required at the container",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil },
			want:   field.ErrorList{secCtxRequired(loom+ape, `container "loom"`+unset)},
			fixed:  true,
			verify: wantAPE("containers[0]", new(false)),
		},
		{
			name:   "no security context at all: the fix creates one",
			kind:   "Pod",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = nil },
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".containers[0]"+ape, `container "loom"`+unset)},
			fixed:  true,
			verify: wantAPE("containers[0]", new(false)),
		},
		{
			name: "cronjob init container",
			kind: "CronJob",
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
				s.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = nil
			},
			want:   field.ErrorList{secCtxRequired(secCtxCronJobSpec+".initContainers[0]"+ape, `container "migrate"`+unset)},
			fixed:  true,
			verify: wantAPE("initContainers[0]", new(false)),
		},
		{
			name: "ephemeral container",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(corev1.Container{Name: "debug", Image: "busybox:1.37"})}
			},
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".ephemeralContainers[0]"+ape, `container "debug"`+unset)},
			fixed:  true,
			verify: wantAPE("ephemeralContainers[0]", new(false)),
		},
		{
			name:   "explicit true is never flipped",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true) },
			want:   field.ErrorList{secCtxInvalid(loom+ape, true, `container "loom"`+allowed)},
			after:  field.ErrorList{secCtxInvalid(loom+ape, true, `container "loom"`+allowed)},
			verify: wantAPE("containers[0]", new(true)),
		},
		{
			name: "privileged is forbidden and never touched",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
				s.Containers[0].SecurityContext.Privileged = new(true)
			},
			want: field.ErrorList{
				secCtxInvalid(loom+ape, true, `container "loom"`+allowed),
				secCtxForbidden(loom+priv, `container "loom" must not run privileged`),
			},
			after: field.ErrorList{
				secCtxInvalid(loom+ape, true, `container "loom"`+allowed),
				secCtxForbidden(loom+priv, `container "loom" must not run privileged`),
			},
		},
		{
			name: "privileged false is fine",
			edit: func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Privileged = new(false) },
		},
		{
			// The API server refuses allowPrivilegeEscalation: false with privileged: true.
			name: "the fix backs off from a privileged container",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
				s.Containers[0].SecurityContext.Privileged = new(true)
			},
			want: field.ErrorList{
				secCtxRequired(loom+ape, `container "loom"`+unset),
				secCtxForbidden(loom+priv, `container "loom" must not run privileged`),
			},
			after: field.ErrorList{
				secCtxRequired(loom+ape, `container "loom"`+unset),
				secCtxForbidden(loom+priv, `container "loom" must not run privileged`),
			},
		},
		{
			// ... and with capabilities.add CAP_SYS_ADMIN.
			name: "the fix backs off from a container that adds SYS_ADMIN, and fixes the others",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
				s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"CAP_SYS_ADMIN"}
				s.Containers = append(s.Containers, secCtxContainer("dolt"))
				s.Containers[1].SecurityContext.AllowPrivilegeEscalation = nil
			},
			want: field.ErrorList{
				secCtxRequired(loom+ape, `container "loom"`+unset),
				secCtxRequired(secCtxDeploySpec+".containers[1]"+ape, `container "dolt"`+unset),
			},
			fixed: true,
			after: field.ErrorList{secCtxRequired(loom+ape, `container "loom"`+unset)},
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
