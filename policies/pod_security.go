package policies

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// pod-security enforces the Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
// at a level (privileged, baseline or restricted) and a version (latest or v1.N), with the
// evaluator and checks of k8s.io/pod-security-admission/policy, the package kube-apiserver's
// PodSecurity admission plugin runs. The verdict is therefore the API server's by construction:
// a pod template fails exactly when kube-apiserver would refuse a Pod with that metadata and
// spec in a namespace labelled pod-security.kubernetes.io/enforce=<level> and
// enforce-version=<version>. loomguard adds what the plugin lacks:
//
//   - every workload kind is checked through its pod template (with the template's metadata,
//     which is what the Pods will carry), so a Deployment that would create forbidden Pods is
//     denied at the Deployment instead of its ReplicaSet failing silently later;
//   - each failing control (a PSA check ID such as hostPathVolumes or capabilities_restricted)
//     becomes violations at the fields it concerns, found by the control's field finder
//     (podSecurityFields below). The message keeps PSA's reason and detail text, names the
//     control and the level:version, and the control ID is the error's Origin;
//   - per-namespace level and version (namespaces[].podSecurity), and governed exceptions per
//     control (exceptions[].controls) and per container where a control reads containers;
//   - a field that another enabled loomguard policy already reports is reported once: the
//     engine keeps one violation per field (see Engine.Evaluate);
//   - the pod spec is judged as the API server stores it (asStored), so that `loomguard
//     check` on a manifest and admission of the object agree.
//
// The policy has no fix of its own: the Loom policies' fixes (run-as-non-root,
// no-privilege-escalation, drop-all-capabilities, seccomp-profile) set every field restricted
// requires that can be set without guessing.
func podSecurity(cfg PodSecurityConfig) Policy {
	ps := newPodSecurityEvaluator()
	lv := cfg.PodSecurityLevel.levelVersion()
	return Policy{
		Fields: []string{
			"hostNetwork", "hostPID", "hostIPC", "volumes[*]",
			"securityContext.{runAsNonRoot,runAsUser,seccompProfile,seLinuxOptions,appArmorProfile,sysctls,windowsOptions.hostProcess}",
			"{initContainers,containers,ephemeralContainers}[*].securityContext.{privileged,allowPrivilegeEscalation,capabilities,runAsNonRoot,runAsUser,seccompProfile,seLinuxOptions,appArmorProfile,procMount,windowsOptions.hostProcess}",
			"{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort",
			"{initContainers,containers,ephemeralContainers}[*].{livenessProbe,readinessProbe,startupProbe,lifecycle.postStart,lifecycle.preStop}.{httpGet,tcpSocket}.host",
			"spec.template.metadata.annotations (seccomp and AppArmor annotations)",
		},
		Check: func(w *Workload) field.ErrorList {
			return ps.check(w, lv)
		},
		Clear: func(t celTemplate) (clearance, bool) {
			return podSecurityConditions(t, lv)
		},
	}
}

// podSecurityConditions are the CEL conditions under which a pod template certainly meets
// the level at the version: at baseline, a pod that shares nothing with its node (see
// hostIsolationConditions), sets no sysctls, SELinux options, AppArmor or seccomp
// annotations, runs nothing privileged, with an AppArmor profile other than RuntimeDefault or a seccomp
// profile other than RuntimeDefault or Localhost, with an added capability, a non-default
// procMount or a probe or lifecycle host; at restricted, also one with only the restricted
// volume types and containers that drop ALL, forbid privilege escalation, run as a non-zero
// non-root user under RuntimeDefault or a named Localhost seccomp profile. They are the
// union of every version's checks from v1.25 on (k8s.io/pod-security-admission/policy);
// older versions judged seccomp and AppArmor by annotations that they may require, so a
// level pinned to one is not expressed.
func podSecurityConditions(t celTemplate, lv psapi.LevelVersion) (clearance, bool) {
	if lv.Level == psapi.LevelPrivileged {
		return clearance{}, true
	}
	if !lv.Version.Latest() && lv.Version.Older(psapi.MajorMinorVersion(1, 25)) {
		return clearance{}, false
	}
	psc := t.PodSC
	c := hostIsolationConditions(t)
	// The annotations, three prefixes each (a key is at most 317 characters), and about
	// thirty checks per container.
	c.Cost += uint64(celMaxMeta)*3*(32+5) + uint64(celMaxContainers)*800
	c.Pod = append(c.Pod,
		psc+".?windowsOptions.?hostProcess.orValue(false) != true",
		"size("+psc+".?sysctls.orValue([])) == 0",
		"!"+psc+".?seLinuxOptions.hasValue()",
		"(!"+psc+".?appArmorProfile.hasValue() || "+psc+".appArmorProfile.?type.orValue('') == 'RuntimeDefault')",
		"(!"+psc+".?seccompProfile.hasValue() || "+psc+".seccompProfile.?type.orValue('') in ['RuntimeDefault', 'Localhost'])",
		t.TemplateMeta+".?annotations.orValue({}).all(k, !k.startsWith('container.apparmor.security.beta.kubernetes.io/') && "+
			"!k.startsWith('seccomp.security.alpha.kubernetes.io/') && !k.startsWith('container.seccomp.security.alpha.kubernetes.io/'))",
	)
	c.Containers = append(c.Containers,
		"sc.?privileged.orValue(false) != true",
		"size(sc.?capabilities.?add.orValue([])) == 0",
		"sc.?windowsOptions.?hostProcess.orValue(false) != true",
		"!sc.?seLinuxOptions.hasValue()",
		"sc.?procMount.orValue('Default') == 'Default'",
		"(!sc.?appArmorProfile.hasValue() || sc.appArmorProfile.?type.orValue('') == 'RuntimeDefault')",
		"(!sc.?seccompProfile.hasValue() || sc.seccompProfile.?type.orValue('') in ['RuntimeDefault', 'Localhost'])",
	)
	// No probe or lifecycle handler names a host. health-probes makes a cleared container
	// set liveness and readiness probes, so those are read as they are; a startupProbe and
	// a lifecycle are mostly absent, so one presence test skips their handlers (fewer terms
	// for the API server's CEL).
	noHost := func(handlers ...string) string {
		var hs []string
		for _, p := range handlers {
			for _, h := range []string{"httpGet", "tcpSocket"} {
				hs = append(hs, p+".?"+h+".?host.orValue('') == ''")
			}
		}
		return strings.Join(hs, " && ")
	}
	c.Containers = append(c.Containers,
		noHost("c.?livenessProbe", "c.?readinessProbe"),
		"(!has(c.startupProbe) || ("+noHost("c.startupProbe")+"))",
		"(!has(c.lifecycle) || ("+noHost("c.lifecycle.?postStart", "c.lifecycle.?preStop")+"))",
	)
	if lv.Level == psapi.LevelRestricted {
		c.Cost += uint64(celMaxVolumes)*50 + uint64(celMaxContainers)*(20*celMaxItems+500)
		prof := "sc.?seccompProfile.orValue(" + psc + ".?seccompProfile.orValue({}))"
		user := "sc.?runAsUser.orValue(" + psc + ".?runAsUser.orValue(0))"
		c.Pod = append(c.Pod,
			t.list("volumes")+".all(v, v.all(k, k in ['name', 'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']))",
			psc+".?runAsNonRoot.orValue(true) == true",
			psc+".?runAsUser.orValue(1) != 0",
		)
		c.Containers = append(c.Containers,
			"sc.?allowPrivilegeEscalation.orValue(true) == false",
			celDropsAll(),
			"sc.?runAsNonRoot.orValue("+psc+".?runAsNonRoot.orValue(false)) == true",
			"type("+user+") == int", user+" != 0",
			"("+prof+".?type.orValue('') == 'RuntimeDefault' || ("+prof+".?type.orValue('') == 'Localhost' && "+prof+".?localhostProfile.orValue('') != ''))",
		)
	}
	return c, true
}

// PodSecurityID is the ID of the pod-security policy.
const PodSecurityID = "pod-security"

// PodSecurityConfig configures pod-security.
type PodSecurityConfig struct {
	Settings         `json:",inline"`
	PodSecurityLevel `json:",inline"`
}

// PodSecurityLevel is a Pod Security Standards level and version, as in the namespace labels
// pod-security.kubernetes.io/enforce and enforce-version.
type PodSecurityLevel struct {
	// Level is privileged (nothing checked), baseline or restricted.
	Level string `json:"level,omitempty"`
	// Version is "latest" or "v1.N": the Kubernetes minor version whose definition of the
	// level applies. A version newer than the checks loomguard was built with means latest;
	// an omitted (empty) one means latest, as an absent enforce-version label and an empty
	// PodSecurityConfiguration version do (k8s.io/pod-security-admission admission/api/v1
	// defaults.go).
	Version string `json:"version,omitempty"`
}

// version returns the parsed Version; empty means latest.
func (l PodSecurityLevel) version() (psapi.Version, error) {
	if l.Version == "" {
		return psapi.LatestVersion(), nil
	}
	return psapi.ParseVersion(l.Version)
}

// Validate reports an unknown level or a malformed version.
func (l PodSecurityLevel) Validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := psapi.ParseLevel(l.Level); err != nil {
		errs = append(errs, field.NotSupported(p.Child("level"), l.Level, []string{string(psapi.LevelPrivileged), string(psapi.LevelBaseline), string(psapi.LevelRestricted)}))
	}
	if _, err := l.version(); err != nil {
		errs = append(errs, field.Invalid(p.Child("version"), l.Version, `must be "latest" or "v1.N"`))
	}
	return errs
}

// levelVersion returns the parsed level and version; l must be valid.
func (l PodSecurityLevel) levelVersion() psapi.LevelVersion {
	level, _ := psapi.ParseLevel(l.Level)
	version, _ := l.version()
	return psapi.LevelVersion{Level: level, Version: version}
}

// Default sets the Loom profile's level: baseline, latest.
func (c *PodSecurityConfig) Default() {
	c.PodSecurityLevel = PodSecurityLevel{Level: string(psapi.LevelBaseline), Version: "latest"}
}

// Validate reports an unknown level or a malformed version.
func (c *PodSecurityConfig) Validate(fldPath *field.Path) field.ErrorList {
	return c.PodSecurityLevel.Validate(fldPath)
}

// namespacePodSecurity builds pod-security at the level of each namespaces entry that sets
// podSecurity, by entry index. def is the policy built from policies.pod-security, whose
// ID, description and default action the copies keep.
func namespacePodSecurity(cfg *Config, def *Policy) map[int]Policy {
	var out map[int]Policy
	for i, o := range cfg.Namespaces {
		if o.PodSecurity == nil {
			continue
		}
		pc := cfg.Policies.PodSecurity
		pc.PodSecurityLevel = *o.PodSecurity
		p := podSecurity(pc)
		p.ID, p.Description, p.DefaultAction = def.ID, def.Description, def.DefaultAction
		if out == nil {
			out = map[int]Policy{}
		}
		out[i] = p
	}
	return out
}

// PodSecurityControls returns the IDs of the Pod Security Standards controls (PSA check IDs)
// that exceptions may name, sorted.
func PodSecurityControls() []string {
	var ids []string
	for _, c := range psapolicy.DefaultChecks() {
		ids = append(ids, string(c.ID))
	}
	slices.Sort(ids)
	return ids
}

// podSecurityEvaluator holds PSA's evaluator over all default checks, which gives the
// verdict, and one evaluator per check, which tells which controls failed (PSA's results
// carry no check IDs).
type podSecurityEvaluator struct {
	all     psapolicy.Evaluator
	checks  []psapolicy.Check
	byCheck map[psapolicy.CheckID]psapolicy.Evaluator
	latest  psapi.Version
	err     error
}

func newPodSecurityEvaluator() *podSecurityEvaluator {
	checks := psapolicy.DefaultChecks()
	ps := &podSecurityEvaluator{checks: checks, byCheck: make(map[psapolicy.CheckID]psapolicy.Evaluator, len(checks))}
	all, err := psapolicy.NewEvaluator(checks, nil)
	if err != nil {
		ps.err = fmt.Errorf("building the pod security evaluator: %w", err)
		return ps
	}
	ps.all = all
	for _, c := range checks {
		e, err := psapolicy.NewEvaluator([]psapolicy.Check{c}, nil)
		if err != nil {
			ps.err = fmt.Errorf("building the evaluator of check %s: %w", c.ID, err)
			return ps
		}
		ps.byCheck[c.ID] = e
		if last := c.Versions[len(c.Versions)-1].MinimumVersion; ps.latest.Older(last) {
			ps.latest = last
		}
	}
	return ps
}

// failedControls returns the IDs of the checks that forbid the pod at lv, in PSA's order
// (baseline checks, then restricted, each sorted), with their results. It applies PSA's
// overrides: a restricted check in force at lv replaces the baseline checks it names.
func (ps *podSecurityEvaluator) failedControls(lv psapi.LevelVersion, meta *metav1.ObjectMeta, spec *corev1.PodSpec) ([]psapolicy.CheckID, []psapolicy.CheckResult) {
	v := lv.Version
	if v.Latest() || ps.latest.Older(v) {
		v = ps.latest
	}
	overridden := map[psapolicy.CheckID]bool{}
	if lv.Level == psapi.LevelRestricted {
		for _, c := range ps.checks {
			if c.Level != psapi.LevelRestricted {
				continue
			}
			var inForce *psapolicy.VersionedCheck
			for i := range c.Versions {
				if !v.Older(c.Versions[i].MinimumVersion) {
					inForce = &c.Versions[i]
				}
			}
			if inForce != nil {
				for _, id := range inForce.OverrideCheckIDs {
					overridden[id] = true
				}
			}
		}
	}
	var ids []psapolicy.CheckID
	var results []psapolicy.CheckResult
	for _, level := range []psapi.Level{psapi.LevelBaseline, psapi.LevelRestricted} {
		var levelIDs []psapolicy.CheckID
		for _, c := range ps.checks {
			if c.Level == level && !overridden[c.ID] {
				levelIDs = append(levelIDs, c.ID)
			}
		}
		slices.Sort(levelIDs)
		for _, id := range levelIDs {
			for _, r := range ps.byCheck[id].EvaluatePod(lv, meta, spec) {
				if !r.Allowed {
					ids = append(ids, id)
					results = append(results, r)
				}
			}
		}
	}
	return ids, results
}

// check evaluates the workload's pod template at lv.
func (ps *podSecurityEvaluator) check(w *Workload, lv psapi.LevelVersion) field.ErrorList {
	if ps.err != nil {
		return field.ErrorList{field.InternalError(w.SpecPath, ps.err)}
	}
	if lv.Level == psapi.LevelPrivileged {
		return nil
	}
	spec := asStored(w.Spec)
	verdict := psapolicy.AggregateCheckResults(ps.all.EvaluatePod(lv, w.Template, spec))
	if verdict.Allowed {
		return nil
	}
	ids, results := ps.failedControls(lv, w.Template, spec)
	var errs field.ErrorList
	for i, id := range ids {
		waived, whole := w.waivedControl(string(id))
		if whole {
			continue
		}
		r := results[i]
		reason := r.ForbiddenReason
		if reason == "" {
			reason = psapolicy.UnknownForbiddenReason
		}
		detail := fmt.Sprintf("PodSecurity %q control %s: %s", lv.String(), id, reason)
		if r.ForbiddenDetail != "" {
			detail += " (" + r.ForbiddenDetail + ")"
		}
		finder := podSecurityFields[id]
		if finder == nil {
			// A check this loomguard does not know yet (a newer PSA): report it at the pod spec.
			errs = append(errs, field.Forbidden(w.SpecPath, detail).WithOrigin(string(id)))
			continue
		}
		found := finder(&controlProbe{ps: ps, id: id, lv: lv, w: w})
		seen := map[string]bool{}
		exempted := len(w.Containers()) < containerCount(w.Spec) // some waived wholly
		for _, f := range found {
			if f.container != "" && waived[f.container] {
				exempted = true
				continue
			}
			if p := f.path.String(); !seen[p] {
				seen[p] = true
				errs = append(errs, field.Forbidden(f.path, detail).WithOrigin(string(id)))
			}
		}
		if len(seen) == 0 && !exempted {
			// PSA forbids the pod but the finder located no field: never lose the verdict.
			errs = append(errs, field.Forbidden(w.SpecPath, detail).WithOrigin(string(id)))
		}
	}
	if len(ids) == 0 {
		// Unreachable while failedControls mirrors the evaluator; never lose the verdict.
		errs = append(errs, field.Forbidden(w.SpecPath, fmt.Sprintf("PodSecurity %q: %s", lv.String(), verdict.ForbiddenDetail())))
	}
	return errs
}

// asStored returns spec as kube-apiserver stores it where PSA's checks read it (see
// docs/api-server.md; SetDefaults_Volume and defaultHostNetworkPorts in k8s.io/kubernetes
// pkg/apis/core/v1/defaults.go): a volume without a source becomes an emptyDir, and under
// hostNetwork an unset hostPort of a regular or init container becomes its containerPort.
// Admission sees a Pod so already; the CLI reads manifests as written, and a template's Pods
// will be defaulted as Pods. spec itself is returned when nothing changes, else a copy: the
// workload is never modified.
func asStored(spec *corev1.PodSpec) *corev1.PodSpec {
	noSource := func(v corev1.Volume) bool { return v.VolumeSource == (corev1.VolumeSource{}) }
	unsetPort := func(c corev1.Container) bool {
		return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.HostPort == 0 })
	}
	volumes := slices.ContainsFunc(spec.Volumes, noSource)
	ports := spec.HostNetwork && (slices.ContainsFunc(spec.Containers, unsetPort) || slices.ContainsFunc(spec.InitContainers, unsetPort))
	if !volumes && !ports {
		return spec
	}
	out := *spec
	if volumes {
		out.Volumes = slices.Clone(spec.Volumes)
		for i := range out.Volumes {
			if noSource(out.Volumes[i]) {
				out.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
			}
		}
	}
	if ports {
		out.Containers, out.InitContainers = hostNetworkPorts(spec.Containers), hostNetworkPorts(spec.InitContainers)
	}
	return &out
}

// hostNetworkPorts returns a copy of containers whose unset hostPorts are their containerPorts.
func hostNetworkPorts(containers []corev1.Container) []corev1.Container {
	out := slices.Clone(containers)
	for i := range out {
		out[i].Ports = slices.Clone(out[i].Ports)
		for j := range out[i].Ports {
			if out[i].Ports[j].HostPort == 0 {
				out[i].Ports[j].HostPort = out[i].Ports[j].ContainerPort
			}
		}
	}
	return out
}

func containerCount(s *corev1.PodSpec) int {
	return len(s.InitContainers) + len(s.Containers) + len(s.EphemeralContainers)
}

// finding is one field a control concerns. container names the container whose field it is
// ("" for a pod-level field that no single container owns), so that an exception for that
// container takes it away.
type finding struct {
	path      *field.Path
	container string
}

// controlProbe gives a field finder the workload and a way to ask PSA whether the control
// forbids a reduced pod: finders use it where the allowed values depend on the version
// (capabilities, sysctls, SELinux types, volume types), so that loomguard never restates
// PSA's lists.
type controlProbe struct {
	ps *podSecurityEvaluator
	id psapolicy.CheckID
	lv psapi.LevelVersion
	w  *Workload
}

// forbids reports whether the control forbids a pod with this metadata and spec at the level.
func (p *controlProbe) forbids(meta *metav1.ObjectMeta, spec *corev1.PodSpec) bool {
	for _, r := range p.ps.byCheck[p.id].EvaluatePod(p.lv, meta, spec) {
		if !r.Allowed {
			return true
		}
	}
	return false
}

// forbidsContainer reports whether the control forbids a pod holding only this container
// (with the pod's OS and host-user settings, which some controls read).
func (p *controlProbe) forbidsContainer(c corev1.Container) bool {
	spec := &corev1.PodSpec{OS: p.w.Spec.OS, HostUsers: p.w.Spec.HostUsers, Containers: []corev1.Container{c}}
	return p.forbids(&metav1.ObjectMeta{}, spec)
}

// forbidsPodContext reports whether the control forbids a pod with this pod-level security
// context and no containers.
func (p *controlProbe) forbidsPodContext(sc *corev1.PodSecurityContext) bool {
	spec := &corev1.PodSpec{OS: p.w.Spec.OS, HostUsers: p.w.Spec.HostUsers, SecurityContext: sc}
	return p.forbids(&metav1.ObjectMeta{}, spec)
}

// containers returns the containers of the workload the policy sees: without those an
// exception waives for pod-security as a whole.
func (p *controlProbe) containers() []ContainerRef { return p.w.Containers() }

func (p *controlProbe) podSC() *field.Path { return p.w.SpecPath.Child("securityContext") }

// podSecurityFields maps each PSA check ID to the function that finds the fields it
// concerns. Each mirrors what its check reads (k8s.io/pod-security-admission/policy/check_*.go);
// it runs only after PSA found the control failing.
var podSecurityFields = map[psapolicy.CheckID]func(*controlProbe) []finding{
	"hostNamespaces": func(p *controlProbe) []finding {
		var out []finding
		s := p.w.Spec
		for _, f := range []struct {
			name string
			on   bool
		}{{"hostNetwork", s.HostNetwork}, {"hostPID", s.HostPID}, {"hostIPC", s.HostIPC}} {
			if f.on {
				out = append(out, finding{path: p.w.SpecPath.Child(f.name)})
			}
		}
		return out
	},
	"hostPathVolumes": func(p *controlProbe) []finding {
		var out []finding
		for i, v := range p.w.Spec.Volumes {
			if v.HostPath != nil {
				out = append(out, finding{path: p.w.SpecPath.Child("volumes").Index(i).Child("hostPath")})
			}
		}
		return out
	},
	"restrictedVolumes": func(p *controlProbe) []finding {
		var out []finding
		for i, v := range p.w.Spec.Volumes {
			if v.VolumeSource == (corev1.VolumeSource{}) {
				continue // an emptyDir once the API server has defaulted it
			}
			if !p.forbids(&metav1.ObjectMeta{}, &corev1.PodSpec{Volumes: []corev1.Volume{v}}) {
				continue
			}
			path := p.w.SpecPath.Child("volumes").Index(i)
			if v.HostPath != nil {
				path = path.Child("hostPath")
			}
			out = append(out, finding{path: path})
		}
		return out
	},
	"hostPorts": func(p *controlProbe) []finding {
		var out []finding
		for _, c := range p.containers() {
			for j, port := range c.Ports {
				if port.HostPort != 0 || (p.w.Spec.HostNetwork && c.Kind != Ephemeral) { // see asStored
					out = append(out, finding{path: c.Path.Child("ports").Index(j).Child("hostPort"), container: c.Name})
				}
			}
		}
		return out
	},
	"hostProbesAndHostLifecycle": func(p *controlProbe) []finding {
		var out []finding
		for _, c := range p.containers() {
			for _, probe := range []struct {
				name string
				h    *corev1.Probe
			}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
				if probe.h != nil {
					out = append(out, handlerHosts(c.Path.Child(probe.name), c.Name, probe.h.HTTPGet, probe.h.TCPSocket)...)
				}
			}
			if c.Lifecycle != nil {
				for _, h := range []struct {
					name string
					h    *corev1.LifecycleHandler
				}{{"postStart", c.Lifecycle.PostStart}, {"preStop", c.Lifecycle.PreStop}} {
					if h.h != nil {
						out = append(out, handlerHosts(c.Path.Child("lifecycle", h.name), c.Name, h.h.HTTPGet, h.h.TCPSocket)...)
					}
				}
			}
		}
		return out
	},
	"privileged": func(p *controlProbe) []finding {
		return containerFields(p, "privileged", func(sc *corev1.SecurityContext) bool {
			return sc.Privileged != nil && *sc.Privileged
		})
	},
	"allowPrivilegeEscalation": func(p *controlProbe) []finding {
		var out []finding
		for _, c := range p.containers() {
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				out = append(out, finding{path: c.Path.Child("securityContext", "allowPrivilegeEscalation"), container: c.Name})
			}
		}
		return out
	},
	"capabilities_baseline": func(p *controlProbe) []finding {
		return forbiddenCapabilities(p)
	},
	"capabilities_restricted": func(p *controlProbe) []finding {
		var out []finding
		for _, c := range p.containers() {
			var caps *corev1.Capabilities
			if c.SecurityContext != nil {
				caps = c.SecurityContext.Capabilities
			}
			if caps == nil || !slices.Contains(caps.Drop, "ALL") {
				out = append(out, finding{path: c.Path.Child("securityContext", "capabilities", "drop"), container: c.Name})
			}
		}
		return append(out, forbiddenCapabilities(p)...)
	},
	"procMount": func(p *controlProbe) []finding {
		return containerFields(p, "procMount", func(sc *corev1.SecurityContext) bool {
			return sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount
		})
	},
	"procMount_restricted": func(p *controlProbe) []finding {
		return containerFields(p, "procMount", func(sc *corev1.SecurityContext) bool {
			return sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount
		})
	},
	"windowsHostProcess": func(p *controlProbe) []finding {
		var out []finding
		if sc := p.w.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
			out = append(out, finding{path: p.podSC().Child("windowsOptions", "hostProcess")})
		}
		return append(out, containerFields(p, "windowsOptions.hostProcess", func(sc *corev1.SecurityContext) bool {
			return sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess
		})...)
	},
	"seLinuxOptions": func(p *controlProbe) []finding {
		var out []finding
		if sc := p.w.Spec.SecurityContext; sc != nil && sc.SELinuxOptions != nil &&
			p.forbidsPodContext(&corev1.PodSecurityContext{SELinuxOptions: sc.SELinuxOptions}) {
			out = append(out, finding{path: p.podSC().Child("seLinuxOptions")})
		}
		for _, c := range p.containers() {
			if sc := c.SecurityContext; sc != nil && sc.SELinuxOptions != nil &&
				p.forbidsContainer(corev1.Container{Name: c.Name, SecurityContext: &corev1.SecurityContext{SELinuxOptions: sc.SELinuxOptions}}) {
				out = append(out, finding{path: c.Path.Child("securityContext", "seLinuxOptions"), container: c.Name})
			}
		}
		return out
	},
	"sysctls": func(p *controlProbe) []finding {
		var out []finding
		sc := p.w.Spec.SecurityContext
		if sc == nil {
			return nil
		}
		for i, s := range sc.Sysctls {
			if p.forbidsPodContext(&corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{s}}) {
				out = append(out, finding{path: p.podSC().Child("sysctls").Index(i)})
			}
		}
		return out
	},
	"appArmorProfile": func(p *controlProbe) []finding {
		var out []finding
		if sc := p.w.Spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil &&
			p.forbidsPodContext(&corev1.PodSecurityContext{AppArmorProfile: sc.AppArmorProfile}) {
			out = append(out, finding{path: p.podSC().Child("appArmorProfile", "type")})
		}
		for _, c := range p.containers() {
			if sc := c.SecurityContext; sc != nil && sc.AppArmorProfile != nil &&
				p.forbidsContainer(corev1.Container{Name: c.Name, SecurityContext: &corev1.SecurityContext{AppArmorProfile: sc.AppArmorProfile}}) {
				out = append(out, finding{path: c.Path.Child("securityContext", "appArmorProfile", "type"), container: c.Name})
			}
		}
		return append(out, forbiddenAnnotations(p, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix)...)
	},
	"seccompProfile_baseline": func(p *controlProbe) []finding {
		return seccompFields(p, false)
	},
	"seccompProfile_restricted": func(p *controlProbe) []finding {
		return seccompFields(p, true)
	},
	"runAsNonRoot": func(p *controlProbe) []finding {
		var out []finding
		podSet, podTrue := false, false
		if sc := p.w.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
			podSet, podTrue = true, *sc.RunAsNonRoot
		}
		if podSet && !podTrue {
			out = append(out, finding{path: p.podSC().Child("runAsNonRoot")})
		}
		for _, c := range p.containers() {
			switch sc := c.SecurityContext; {
			case sc != nil && sc.RunAsNonRoot != nil:
				if !*sc.RunAsNonRoot {
					out = append(out, finding{path: c.Path.Child("securityContext", "runAsNonRoot"), container: c.Name})
				}
			case !podTrue:
				// Neither the pod nor the container says: the pod-level field is where
				// one setting covers every container.
				out = append(out, finding{path: p.podSC().Child("runAsNonRoot"), container: c.Name})
			}
		}
		return out
	},
	"runAsUser": func(p *controlProbe) []finding {
		var out []finding
		if sc := p.w.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			out = append(out, finding{path: p.podSC().Child("runAsUser")})
		}
		return append(out, containerFields(p, "runAsUser", func(sc *corev1.SecurityContext) bool {
			return sc.RunAsUser != nil && *sc.RunAsUser == 0
		})...)
	},
}

// containerFields returns the securityContext field (dotted below securityContext) of every
// container whose security context is bad.
func containerFields(p *controlProbe, name string, bad func(*corev1.SecurityContext) bool) []finding {
	var out []finding
	for _, c := range p.containers() {
		if c.SecurityContext != nil && bad(c.SecurityContext) {
			path := c.Path.Child("securityContext")
			for _, part := range strings.Split(name, ".") {
				path = path.Child(part)
			}
			out = append(out, finding{path: path, container: c.Name})
		}
	}
	return out
}

// forbiddenCapabilities returns capabilities.add[i] of each added capability the control forbids.
func forbiddenCapabilities(p *controlProbe) []finding {
	var out []finding
	for _, c := range p.containers() {
		if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
			continue
		}
		for i, capability := range c.SecurityContext.Capabilities.Add {
			probe := corev1.Container{Name: c.Name, SecurityContext: &corev1.SecurityContext{
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{capability}, Drop: []corev1.Capability{"ALL"}},
			}}
			if p.forbidsContainer(probe) {
				out = append(out, finding{path: c.Path.Child("securityContext", "capabilities", "add").Index(i), container: c.Name})
			}
		}
	}
	return out
}

// handlerHosts returns the host fields of a probe's or lifecycle hook's handlers that are set.
func handlerHosts(path *field.Path, container string, http *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction) []finding {
	var out []finding
	if http != nil && http.Host != "" {
		out = append(out, finding{path: path.Child("httpGet", "host"), container: container})
	}
	if tcp != nil && tcp.Host != "" {
		out = append(out, finding{path: path.Child("tcpSocket", "host"), container: container})
	}
	return out
}

// forbiddenAnnotations returns the pod template annotations under prefix (the pod-wide key
// prefix without a container suffix, or prefix+container) whose value the control forbids.
func forbiddenAnnotations(p *controlProbe, prefixes ...string) []finding {
	var out []finding
	keys := make([]string, 0, len(p.w.Template.Annotations))
	for k := range p.w.Template.Annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, prefix := range prefixes {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			container := strings.TrimPrefix(k, prefix)
			var spec corev1.PodSpec
			if container != "" {
				spec.Containers = []corev1.Container{{Name: container}}
			}
			if p.forbids(&metav1.ObjectMeta{Annotations: map[string]string{k: p.w.Template.Annotations[k]}}, &spec) {
				out = append(out, finding{path: p.w.TemplatePath.Child("annotations").Key(k), container: container})
			}
		}
	}
	return out
}

// seccompFields finds seccomp profiles the control forbids: the pre-1.19 annotations, an
// explicit type other than RuntimeDefault or Localhost, and (restricted only) containers for
// which neither they nor the pod set one, reported at the pod's field, where one setting
// covers them all.
func seccompFields(p *controlProbe, restricted bool) []finding {
	out := forbiddenAnnotations(p, corev1.SeccompPodAnnotationKey, corev1.SeccompContainerAnnotationKeyPrefix)
	podValid := false
	if sc := p.w.Spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
		podValid = validSeccompType(sc.SeccompProfile.Type)
		if !podValid && p.forbidsPodContext(&corev1.PodSecurityContext{SeccompProfile: sc.SeccompProfile}) {
			out = append(out, finding{path: p.podSC().Child("seccompProfile", "type")})
		}
	}
	for _, c := range p.containers() {
		switch sc := c.SecurityContext; {
		case sc != nil && sc.SeccompProfile != nil:
			if !validSeccompType(sc.SeccompProfile.Type) &&
				p.forbidsContainer(corev1.Container{Name: c.Name, SecurityContext: &corev1.SecurityContext{SeccompProfile: sc.SeccompProfile}}) {
				out = append(out, finding{path: c.Path.Child("securityContext", "seccompProfile", "type"), container: c.Name})
			}
		case restricted && !podValid:
			out = append(out, finding{path: p.podSC().Child("seccompProfile"), container: c.Name})
		}
	}
	return out
}

// validSeccompType reports whether a seccomp profile type confines the container, as the
// Pod Security Standards require (RuntimeDefault or Localhost).
func validSeccompType(t corev1.SeccompProfileType) bool {
	return t == corev1.SeccompProfileTypeRuntimeDefault || t == corev1.SeccompProfileTypeLocalhost
}
