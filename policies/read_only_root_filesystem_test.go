package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestReadOnlyRootFilesystem(t *testing.T) {
	const (
		ro      = ".securityContext.readOnlyRootFilesystem"
		unset   = " must set readOnlyRootFilesystem: true"
		writing = " must have a read-only root filesystem: set readOnlyRootFilesystem to true and mount volumes where it writes"
	)
	loom := secCtxDeploySpec + ".containers[0]"
	wantRO := func(want bool) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			if got := s.Containers[0].SecurityContext.ReadOnlyRootFilesystem; got == nil || *got != want {
				t.Errorf("readOnlyRootFilesystem = %v, want %v", got, want)
			}
		}
	}
	secCtxRun(t, readOnlyRootFilesystem(Settings{}), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant cronjob", kind: "CronJob"},
		{
			name:   "unset is required",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil },
			want:   field.ErrorList{secCtxRequired(loom+ro, `container "loom"`+unset)},
			fixed:  true,
			verify: wantRO(true),
		},
		{
			name:   "pod without a security context: the fix creates it",
			kind:   "Pod",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = nil },
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".containers[0]"+ro, `container "loom"`+unset)},
			fixed:  true,
			verify: wantRO(true),
		},
		{
			name:   "explicit false is invalid and never flipped",
			kind:   "CronJob",
			edit:   func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = new(false) },
			want:   field.ErrorList{secCtxInvalid(secCtxCronJobSpec+".containers[0]"+ro, false, `container "loom"`+writing)},
			after:  field.ErrorList{secCtxInvalid(secCtxCronJobSpec+".containers[0]"+ro, false, `container "loom"`+writing)},
			verify: wantRO(false),
		},
		{
			name: "init containers count",
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{secCtxContainer("migrate"), secCtxContainer("seed")}
				s.InitContainers[0].SecurityContext.ReadOnlyRootFilesystem = new(false)
				s.InitContainers[1].SecurityContext.ReadOnlyRootFilesystem = nil
			},
			want: field.ErrorList{
				secCtxInvalid(secCtxDeploySpec+".initContainers[0]"+ro, false, `container "migrate"`+writing),
				secCtxRequired(secCtxDeploySpec+".initContainers[1]"+ro, `container "seed"`+unset),
			},
			fixed: true,
			after: field.ErrorList{secCtxInvalid(secCtxDeploySpec+".initContainers[0]"+ro, false, `container "migrate"`+writing)},
		},
		{
			name: "ephemeral containers are exempt and left alone",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(corev1.Container{Name: "debug", Image: "busybox:1.37"})}
			},
			verify: func(t *testing.T, s *corev1.PodSpec) {
				if s.EphemeralContainers[0].SecurityContext != nil {
					t.Error("the fix touched the ephemeral container")
				}
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
