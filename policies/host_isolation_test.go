package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestHostIsolation(t *testing.T) {
	hostPath := func(name, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}
	}
	p := hostIsolation(Settings{})
	if p.Fix != nil {
		t.Fatal("host-isolation must have no fix")
	}
	secCtxRun(t, p, []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant pod", kind: "Pod"},
		{name: "hostPort 0 is unset", edit: func(s *corev1.PodSpec) { s.Containers[0].Ports[0].HostPort = 0 }},
		{
			name: "host namespaces",
			edit: func(s *corev1.PodSpec) { s.HostNetwork, s.HostPID, s.HostIPC = true, true, true },
			want: field.ErrorList{
				secCtxForbidden(secCtxDeploySpec+".hostNetwork", "the pod must not use the host's network namespace: remove hostNetwork: true"),
				secCtxForbidden(secCtxDeploySpec+".hostPID", "the pod must not use the host's PID namespace: remove hostPID: true"),
				secCtxForbidden(secCtxDeploySpec+".hostIPC", "the pod must not use the host's IPC namespace: remove hostIPC: true"),
				// The API server sets hostPort to the containerPort under hostNetwork.
				secCtxForbidden(secCtxDeploySpec+".containers[0].ports[0].hostPort", `container "loom" must not bind host port 8081: expose the port through a Service`),
			},
		},
		{
			name: "hostNetwork: unset host ports of init and regular containers are reported as stored",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.HostNetwork = true
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
				s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{Name: "admin", ContainerPort: 9000, HostPort: 9001})
			},
			want: field.ErrorList{
				secCtxForbidden(secCtxPodSpec+".hostNetwork", "the pod must not use the host's network namespace: remove hostNetwork: true"),
				secCtxForbidden(secCtxPodSpec+".initContainers[0].ports[0].hostPort", `container "migrate" must not bind host port 8081: expose the port through a Service`),
				secCtxForbidden(secCtxPodSpec+".containers[0].ports[0].hostPort", `container "loom" must not bind host port 8081: expose the port through a Service`),
				secCtxForbidden(secCtxPodSpec+".containers[0].ports[1].hostPort", `container "loom" must not bind host port 9001: expose the port through a Service`),
			},
		},
		{
			name: "pod: hostPID only",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) { s.HostPID = true },
			want: field.ErrorList{
				secCtxForbidden(secCtxPodSpec+".hostPID", "the pod must not use the host's PID namespace: remove hostPID: true"),
			},
		},
		{
			name: "cronjob: hostPath volumes at their index",
			kind: "CronJob",
			edit: func(s *corev1.PodSpec) {
				s.Volumes = append(s.Volumes, hostPath("docker", "/var/run/docker.sock"), hostPath("logs", "/var/log"))
			},
			want: field.ErrorList{
				secCtxForbidden(secCtxCronJobSpec+".volumes[2].hostPath",
					`volume "docker" must not mount the host path "/var/run/docker.sock": use an emptyDir, a persistentVolumeClaim or a configMap`),
				secCtxForbidden(secCtxCronJobSpec+".volumes[3].hostPath",
					`volume "logs" must not mount the host path "/var/log": use an emptyDir, a persistentVolumeClaim or a configMap`),
			},
		},
		{
			name: "host ports in init and regular containers",
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
				s.InitContainers[0].Ports[0].HostPort = 9090
				s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{Name: "dolt", ContainerPort: 3307, HostPort: 3307})
			},
			want: field.ErrorList{
				secCtxForbidden(secCtxDeploySpec+".initContainers[0].ports[0].hostPort", `container "migrate" must not bind host port 9090: expose the port through a Service`),
				secCtxForbidden(secCtxDeploySpec+".containers[0].ports[1].hostPort", `container "loom" must not bind host port 3307: expose the port through a Service`),
			},
		},
		{
			// The Linux-only security policies skip Windows pods; this one does not.
			name: "windows pods are in scope",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				s.OS = &corev1.PodOS{Name: corev1.Windows}
				s.HostNetwork = true
			},
			want: field.ErrorList{
				secCtxForbidden(secCtxPodSpec+".hostNetwork", "the pod must not use the host's network namespace: remove hostNetwork: true"),
				secCtxForbidden(secCtxPodSpec+".containers[0].ports[0].hostPort", `container "loom" must not bind host port 8081: expose the port through a Service`),
			},
		},
	})
}
