package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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
		setWindowsUser = "set runAsUserName to a non-administrator account such as ContainerUser"
	)
	// windowsSpec makes s a Windows pod spec: the Linux-only fields the API server refuses
	// there are gone, and the pod runs as user (when not nil).
	windowsSpec := func(s *corev1.PodSpec, user *string) {
		s.OS = &corev1.PodOS{Name: corev1.Windows}
		s.SecurityContext = nil
		if user != nil {
			s.SecurityContext = &corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{RunAsUserName: user}}
		}
		s.Containers[0].SecurityContext = nil
		s.Volumes, s.Containers[0].VolumeMounts = nil, nil
	}
	// wantWindowsPod checks that the fix set the pod's runAsNonRoot and nothing Linux-only.
	wantWindowsPod := func(user *string) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			want := &corev1.PodSecurityContext{RunAsNonRoot: new(true)}
			if user != nil {
				want.WindowsOptions = &corev1.WindowsSecurityContextOptions{RunAsUserName: user}
			}
			if !equality.Semantic.DeepEqual(s.SecurityContext, want) || s.Containers[0].SecurityContext != nil {
				t.Errorf("fixed windows pod securityContext = %+v, container %+v; want %+v and none", s.SecurityContext, s.Containers[0].SecurityContext, want)
			}
		}
	}
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
			name: "windows pod with nothing set: runAsNonRoot only; the fix sets nothing Linux-only",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) { windowsSpec(s, nil) },
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".securityContext.runAsNonRoot", `container "loom" must run as non-root: `+setNonRoot),
			},
			fixed:  true,
			verify: wantWindowsPod(nil),
		},
		{
			name: "windows template as the administrator, runAsNonRoot false on the container (the reported case)",
			edit: func(s *corev1.PodSpec) {
				windowsSpec(s, new("ContainerAdministrator"))
				s.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsNonRoot: new(false)}
			},
			want: field.ErrorList{
				secCtxInvalid(loomNonRoot, false, `container "loom" must run as non-root: set runAsNonRoot to true`),
				secCtxInvalid(secCtxDeploySpec+".securityContext.windowsOptions.runAsUserName", "ContainerAdministrator",
					`container "loom" must not run as the Windows administrator "ContainerAdministrator": `+setWindowsUser),
			},
			after: field.ErrorList{
				secCtxInvalid(loomNonRoot, false, `container "loom" must run as non-root: set runAsNonRoot to true`),
				secCtxInvalid(secCtxDeploySpec+".securityContext.windowsOptions.runAsUserName", "ContainerAdministrator",
					`container "loom" must not run as the Windows administrator "ContainerAdministrator": `+setWindowsUser),
			},
		},
		{
			name: "windows template as the administrator, runAsNonRoot unset: the fix sets runAsNonRoot, the user stays",
			kind: "StatefulSet",
			edit: func(s *corev1.PodSpec) { windowsSpec(s, new("ContainerAdministrator")) },
			want: field.ErrorList{
				secCtxRequired(secCtxDeploySpec+".securityContext.runAsNonRoot", `container "loom" must run as non-root: `+setNonRoot),
				secCtxInvalid(secCtxDeploySpec+".securityContext.windowsOptions.runAsUserName", "ContainerAdministrator",
					`container "loom" must not run as the Windows administrator "ContainerAdministrator": `+setWindowsUser),
			},
			fixed: true,
			after: field.ErrorList{
				secCtxInvalid(secCtxDeploySpec+".securityContext.windowsOptions.runAsUserName", "ContainerAdministrator",
					`container "loom" must not run as the Windows administrator "ContainerAdministrator": `+setWindowsUser),
			},
			verify: wantWindowsPod(new("ContainerAdministrator")),
		},
		{
			name: "windows: a container's own administrator name in any case; another container overrides the pod's",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				windowsSpec(s, new("ContainerUser"))
				s.SecurityContext.RunAsNonRoot = new(true)
				s.Containers[0].SecurityContext = &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{RunAsUserName: new("containeradministrator")}}
				side := corev1.Container{Name: "side", Image: "ghcr.io/x/side:1"}
				s.Containers = append(s.Containers, side)
			},
			want: field.ErrorList{
				secCtxInvalid(secCtxPodSpec+".containers[0].securityContext.windowsOptions.runAsUserName", "containeradministrator",
					`container "loom" must not run as the Windows administrator "containeradministrator": `+setWindowsUser),
			},
			after: field.ErrorList{
				secCtxInvalid(secCtxPodSpec+".containers[0].securityContext.windowsOptions.runAsUserName", "containeradministrator",
					`container "loom" must not run as the Windows administrator "containeradministrator": `+setWindowsUser),
			},
		},
		{
			name: "compliant windows pod: runAsNonRoot and a non-administrator user, no UID",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				windowsSpec(s, new("ContainerUser"))
				s.SecurityContext.RunAsNonRoot = new(true)
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
	r := evaluate(e, secCtxWorkload(t, "Deployment", spec))
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
