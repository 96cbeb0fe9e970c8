package policies

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// host-isolation keeps pods out of the node's namespaces and filesystem. It forbids:
//
//   - hostNetwork, hostPID and hostIPC set to true;
//   - hostPath volumes (reported at volumes[i].hostPath, naming the volume and the path);
//   - a non-zero hostPort on any container port, init and ephemeral containers included.
//
// A hostPort of 0 (unset) is fine, except under hostNetwork: true, where the API server sets
// each unset hostPort of a regular or init container to its containerPort when it stores a
// Pod (defaultHostNetworkPorts, called by SetDefaults_Pod in k8s.io/kubernetes
// pkg/apis/core/v1/defaults.go). The policy judges the object as stored, so it reports those
// ports for a Pod and a template alike, whether or not the defaulting has run.
//
// The policy applies to Windows pods too (a HostProcess pod needs hostNetwork and so needs
// an exception). It has no fix: only the workload's author can say what the pod should use
// instead of the host's resources.
func hostIsolation(cfg Settings) Policy {
	return Policy{
		Fields: []string{
			"hostNetwork",
			"hostPID",
			"hostIPC",
			"volumes[*].hostPath",
			"{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort",
		},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			s := w.Spec
			if s.HostNetwork {
				errs = append(errs, field.Forbidden(w.SpecPath.Child("hostNetwork"), "the pod must not use the host's network namespace: remove hostNetwork: true"))
			}
			if s.HostPID {
				errs = append(errs, field.Forbidden(w.SpecPath.Child("hostPID"), "the pod must not use the host's PID namespace: remove hostPID: true"))
			}
			if s.HostIPC {
				errs = append(errs, field.Forbidden(w.SpecPath.Child("hostIPC"), "the pod must not use the host's IPC namespace: remove hostIPC: true"))
			}
			for i := range s.Volumes {
				if hp := s.Volumes[i].HostPath; hp != nil {
					errs = append(errs, field.Forbidden(w.SpecPath.Child("volumes").Index(i).Child("hostPath"),
						"volume "+strconv.Quote(s.Volumes[i].Name)+" must not mount the host path "+strconv.Quote(hp.Path)+": use an emptyDir, a persistentVolumeClaim or a configMap"))
				}
			}
			for _, c := range w.Containers() {
				for j := range c.Ports {
					hp := c.Ports[j].HostPort
					if hp == 0 && s.HostNetwork && c.Kind != Ephemeral {
						hp = c.Ports[j].ContainerPort // as the API server stores it (see above)
					}
					if hp != 0 {
						errs = append(errs, field.Forbidden(c.Path.Child("ports").Index(j).Child("hostPort"),
							containerPhrase(c.Name)+" must not bind host port "+strconv.Itoa(int(hp))+": expose the port through a Service"))
					}
				}
			}
			return errs
		},
		// Cleared: no host namespace, no hostPath volume, no hostPort.
		Clear: func(t celTemplate) (clearance, bool) {
			return hostIsolationConditions(t), true
		},
	}
}

// hostIsolationConditions are the CEL conditions of a pod that shares nothing with its
// node: host-isolation's, and part of the Pod Security Standards' baseline.
func hostIsolationConditions(t celTemplate) clearance {
	return clearance{
		Pod: []string{
			t.Spec + ".?hostNetwork.orValue(false) != true",
			t.Spec + ".?hostPID.orValue(false) != true",
			t.Spec + ".?hostIPC.orValue(false) != true",
			t.list("volumes") + ".all(v, !has(v.hostPath))",
		},
		Containers: []string{sizedList("c.?ports.orValue([])", celMaxItems, "p", "p.?hostPort.orValue(0) == 0")},
		Cost:       uint64(celMaxVolumes)*20 + uint64(celMaxContainers)*(uint64(celMaxItems)*20+100),
	}
}
