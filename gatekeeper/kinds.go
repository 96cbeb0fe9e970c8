package gatekeeper

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// mapping is what one Constraint becomes: parameters of one loomguard policy, the aspects of
// that policy it checks, and what differs. A mapping without a policy is unmapped.
type mapping struct {
	policy string
	// covers are the aspects of the policy (see aspects) that the Constraint checks too.
	// An aspect that no Constraint of the policy covers is something loomguard checks
	// beyond the Constraints, and is reported as a difference.
	covers []string
	// settings describe the parameters set, for the report ("forbiddenTags: latest").
	settings []string
	// lost says what the Constraint enforces or allows that loomguard cannot express.
	lost []string
	// notes are differences of behaviour that are not losses.
	notes []string
	// instead says what to do about an unmapped Constraint.
	instead string
	// apply sets the Constraint's parameters, merging with what other Constraints set.
	apply func(*policies.PolicyConfigs)
}

// aspect is one requirement of a loomguard policy, as the report names it.
type aspect struct{ id, text string }

// aspects lists, per policy, the requirements it always checks when it runs. They are what
// a partial mapping can leave uncovered.
var aspects = map[string][]aspect{
	"required-labels": {{"labels", "the required labels on the workload and its pod template"}},
	"resource-limits": {
		{"requests.cpu", "a cpu request"}, {"requests.memory", "a memory request"},
		{"limits.cpu", "a cpu limit"}, {"limits.memory", "a memory limit"},
	},
	"run-as-non-root":         {{"runAsNonRoot", "runAsNonRoot: true"}, {"runAsUser", "a numeric, non-zero runAsUser"}},
	"no-privilege-escalation": {{"allowPrivilegeEscalation", "allowPrivilegeEscalation: false"}, {"privileged", "privileged not true"}},
	"drop-all-capabilities":   {{"drop", `capabilities.drop including "ALL"`}, {"add", "capabilities.add only from allowedAdd"}},
	"read-only-root-filesystem": {
		{"readOnlyRootFilesystem", "readOnlyRootFilesystem: true"},
	},
	"seccomp-profile": {{"profile", "a seccomp profile of an allowed type"}},
	"host-isolation": {
		{"hostNetwork", "no hostNetwork"}, {"hostPID", "no hostPID"}, {"hostIPC", "no hostIPC"},
		{"hostPath", "no hostPath volume"}, {"hostPort", "no hostPort"},
	},
	"image-tag":     {{"tag", "an explicit tag or digest, never a forbidden tag"}},
	"health-probes": {{"livenessProbe", "a livenessProbe"}, {"readinessProbe", "a readinessProbe"}},
}

// kindMapper maps one constraint kind.
type kindMapper func(c *Constraint, p *params) mapping

// kinds maps gatekeeper-library's constraint kinds, general and pod-security-policy, that
// overlap loomguard's catalog. Their parameters are those of the library's templates.
var kinds = map[string]kindMapper{
	"K8sRequiredLabels":                       requiredLabels,
	"K8sContainerLimits":                      containerLimits,
	"K8sContainerRequests":                    containerRequests,
	"K8sContainerRatios":                      containerRatios,
	"K8sRequiredResources":                    requiredResources,
	"K8sDisallowedTags":                       disallowedTags,
	"K8sImageDigests":                         imageDigests,
	"K8sAllowedRepos":                         allowedRepos,
	"K8sRequiredProbes":                       requiredProbes,
	"K8sReplicaLimits":                        replicaLimits,
	"K8sPSPPrivilegedContainer":               pspPrivileged,
	"K8sPSPAllowPrivilegeEscalationContainer": pspAllowPrivilegeEscalation,
	"K8sPSPCapabilities":                      pspCapabilities,
	"K8sPSPReadOnlyRootFilesystem":            pspReadOnlyRootFilesystem,
	"K8sPSPHostNamespace":                     pspHostNamespace,
	"K8sPSPHostNetworkingPorts":               pspHostNetworkingPorts,
	"K8sPSPHostFilesystem":                    pspHostFilesystem,
	"K8sPSPSeccomp":                           pspSeccomp,
	"K8sPSPAllowedUsers":                      pspAllowedUsers,
	"K8sPSPVolumeTypes":                       pspVolumeTypes,
}

// pssInstead is the advice for a pod-security-policy kind whose check is one control of the
// Pod Security Standards: loomguard's pod-security policy judges whole levels, so it would
// also enforce the level's other controls, and the Constraint stays unmapped.
func pssInstead(control, level string) string {
	return fmt.Sprintf("loomguard's pod-security policy checks this as the %s control of the Pod Security Standards, "+
		"but only as part of a whole level: set policies.pod-security.level to %s (and action) to enforce it with the level's other controls", control, level)
}

// unmappedKinds are known kinds without a loomguard counterpart, with what to do instead.
var unmappedKinds = map[string]string{
	"K8sPSPAppArmor":           pssInstead("appArmorProfile", "baseline"),
	"K8sPSPSELinuxV2":          pssInstead("seLinuxOptions", "baseline"),
	"K8sPSPProcMount":          pssInstead("procMount", "baseline"),
	"K8sPSPForbiddenSysctls":   pssInstead("sysctls", "baseline"),
	"K8sPSPFlexVolumes":        pssInstead("restrictedVolumes", "restricted"),
	"K8sPSPWindowsHostProcess": pssInstead("windowsHostProcess", "baseline"),
	"K8sPSPFSGroup": "loomguard does not restrict fsGroup (neither do the Pod Security Standards); " +
		"keep a ValidatingAdmissionPolicy on spec.securityContext.fsGroup",
	"K8sPSPAutomountServiceAccountTokenPod": "loomguard does not check automountServiceAccountToken; " +
		"set it to false on the ServiceAccount, or keep a ValidatingAdmissionPolicy for it",
	"K8sDisallowedRepos": "image-tag has an allow-list of registries (allowedRegistries), not a deny-list; " +
		"list the registries you allow instead",
	"K8sBlockNodePort":       "loomguard governs workloads, not Services; keep a ValidatingAdmissionPolicy on Service spec.type",
	"K8sBlockLoadBalancer":   "loomguard governs workloads, not Services; keep a ValidatingAdmissionPolicy on Service spec.type",
	"K8sHttpsOnly":           "loomguard governs workloads, not Ingresses; keep a ValidatingAdmissionPolicy on Ingress TLS",
	"K8sUniqueIngressHost":   "loomguard governs workloads, not Ingresses; keep a ValidatingAdmissionPolicy or Gatekeeper for it",
	"K8sRequiredAnnotations": "loomguard checks labels, not annotations; keep a ValidatingAdmissionPolicy on metadata.annotations",
	"K8sContainerEphemeralStorageLimit": "resource-limits checks cpu and memory only; keep a LimitRange with an " +
		"ephemeral-storage default and max",
}

func requiredLabels(c *Constraint, p *params) mapping {
	m := mapping{policy: "required-labels", covers: []string{"labels"}}
	var keys []string
	allowed := map[string][]string{}
	for i, l := range p.list("labels") {
		key, _ := l["key"].(string)
		if key == "" {
			p.errs = append(p.errs, field.Required(paramsPath.Child("labels").Index(i).Child("key"), "a label key"))
			continue
		}
		keys = append(keys, key)
		re, _ := l["allowedRegex"].(string)
		if re == "" {
			continue
		}
		if values, ok := literalAlternatives(re); ok {
			allowed[key] = values
			m.settings = append(m.settings, fmt.Sprintf("allowedValues.%s: %s (from allowedRegex %q)", key, strings.Join(values, ", "), re))
			continue
		}
		m.lost = append(m.lost, fmt.Sprintf("allowedRegex %q of label %q: loomguard lists allowed values, it has no regular expressions; any non-empty value passes", re, key))
	}
	m.settings = append([]string{"labels: " + strings.Join(keys, ", ")}, m.settings...)
	if p.has("message") {
		m.notes = append(m.notes, "the custom message is not carried over: loomguard names the missing label and the field")
	}
	m.notes = append(m.notes, "loomguard requires each label with a non-empty value, on the workload and on its pod template "+
		"(on a Pod, on the Pod); Gatekeeper only on the matched object, with any value that matches allowedRegex")
	m.apply = func(pc *policies.PolicyConfigs) {
		rl := &pc.RequiredLabels
		for _, k := range keys {
			if !slices.Contains(rl.Labels, k) {
				rl.Labels = append(rl.Labels, k)
			}
		}
		for k, v := range allowed {
			if rl.AllowedValues == nil {
				rl.AllowedValues = map[string][]string{}
			}
			if prev, ok := rl.AllowedValues[k]; ok {
				v = intersect(prev, v) // both constraints apply: only values both allow pass
			}
			rl.AllowedValues[k] = v
		}
	}
	return m
}

// literalAlternatives turns an anchored regular expression that only lists literal label
// values (^(a|b|c)$, ^(?:a|b)$, ^a$) into those values; anything else is not a list of values.
func literalAlternatives(re string) ([]string, bool) {
	if _, err := syntax.Parse(re, syntax.Perl); err != nil {
		return nil, false
	}
	body, ok := strings.CutPrefix(re, "^")
	if !ok {
		return nil, false
	}
	if body, ok = strings.CutSuffix(body, "$"); !ok {
		return nil, false
	}
	grouped := false
	if inner, ok := strings.CutPrefix(body, "(?:"); ok && strings.HasSuffix(inner, ")") {
		body, grouped = strings.TrimSuffix(inner, ")"), true
	} else if inner, ok := strings.CutPrefix(body, "("); ok && strings.HasSuffix(inner, ")") {
		body, grouped = strings.TrimSuffix(inner, ")"), true
	}
	if !grouped && strings.Contains(body, "|") {
		return nil, false // ^a|b$ is "starts with a" or "ends with b"
	}
	var values []string
	for _, part := range strings.Split(body, "|") {
		v := strings.ReplaceAll(part, `\.`, ".")
		v = strings.ReplaceAll(v, `\-`, "-")
		if v == "" || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || strings.Contains(strings.ReplaceAll(part, `\.`, ""), ".") {
			return nil, false
		}
		values = append(values, v)
	}
	return values, true
}

func containerLimits(c *Constraint, p *params) mapping {
	return resourceMaxima(p, "limits", "a LimitRange with a max per container")
}

func containerRequests(c *Constraint, p *params) mapping {
	return resourceMaxima(p, "requests", "a ResourceQuota or a ValidatingAdmissionPolicy")
}

// resourceMaxima maps K8sContainerLimits and K8sContainerRequests: the values must be set,
// and at most the cpu and memory parameters.
func resourceMaxima(p *params, which, instead string) mapping {
	m := mapping{policy: "resource-limits", covers: []string{which + ".cpu", which + ".memory"}}
	m.settings = []string{"cpu and memory " + which + " required"}
	for _, r := range []string{"cpu", "memory"} {
		if v := p.str(r); v != "" && v != "-1" {
			if _, err := resource.ParseQuantity(v); err != nil {
				p.errs = append(p.errs, field.Invalid(paramsPath.Child(r), v, "must be a Kubernetes quantity"))
				continue
			}
			m.lost = append(m.lost, fmt.Sprintf("the maximum %s %s of %s: loomguard does not cap %s; use %s", r, strings.TrimSuffix(which, "s"), v, which, instead))
		}
	}
	m.apply = func(*policies.PolicyConfigs) {}
	return m
}

func requiredResources(c *Constraint, p *params) mapping {
	m := mapping{policy: "resource-limits"}
	for _, which := range []string{"limits", "requests"} {
		list := p.strings(which)
		for _, r := range list {
			if r != "cpu" && r != "memory" {
				p.errs = append(p.errs, field.NotSupported(paramsPath.Child(which), r, []string{"cpu", "memory"}))
				continue
			}
			m.covers = append(m.covers, which+"."+r)
		}
		if len(list) > 0 {
			m.settings = append(m.settings, which+" required: "+strings.Join(list, ", "))
		}
	}
	m.apply = func(*policies.PolicyConfigs) {}
	return m
}

func containerRatios(c *Constraint, p *params) mapping {
	m := mapping{policy: "resource-limits"}
	ratio, ok := p.number("ratio")
	if !ok {
		p.errs = append(p.errs, field.Required(paramsPath.Child("ratio"), "the maximum limit/request ratio"))
		return m
	}
	use := ratio
	if cpu, ok := p.number("cpuRatio"); ok && cpu != ratio {
		use = min(ratio, cpu)
		m.lost = append(m.lost, fmt.Sprintf("cpuRatio %g next to ratio %g: loomguard has one maxLimitRequestRatio for cpu and memory, set to the smaller, %g", cpu, ratio, use))
	}
	if use < 1 {
		m.lost = append(m.lost, fmt.Sprintf("ratio %g is below 1, which no container with a request at most its limit can meet; loomguard's smallest ratio is 1", use))
		use = 1
	}
	m.settings = []string{fmt.Sprintf("maxLimitRequestRatio: %g", use)}
	m.notes = append(m.notes, "loomguard compares limit/request per container and resource, as Gatekeeper does")
	m.apply = func(pc *policies.PolicyConfigs) {
		rl := &pc.ResourceLimits
		if rl.MaxLimitRequestRatio == 0 || use < rl.MaxLimitRequestRatio {
			rl.MaxLimitRequestRatio = use
		}
	}
	return m
}

func disallowedTags(c *Constraint, p *params) mapping {
	tags := p.strings("tags")
	m := mapping{policy: "image-tag", covers: []string{"tag"}, settings: []string{"forbiddenTags: " + strings.Join(tags, ", ")}}
	m.lost = append(m.lost, `an image that names a registry port but no tag (registry:5000/app): Gatekeeper only looks for a ":" and admits it, loomguard reads it as untagged and denies it; a digest without a tag passes both`)
	m.apply = func(pc *policies.PolicyConfigs) {
		for _, t := range tags {
			if !slices.Contains(pc.ImageTag.ForbiddenTags, t) {
				pc.ImageTag.ForbiddenTags = append(pc.ImageTag.ForbiddenTags, t)
			}
		}
	}
	return m
}

func imageDigests(c *Constraint, p *params) mapping {
	m := mapping{policy: "image-tag", covers: []string{"tag"}, settings: []string{"requireDigest: true"}}
	m.apply = func(pc *policies.PolicyConfigs) { pc.ImageTag.RequireDigest = true }
	return m
}

func allowedRepos(c *Constraint, p *params) mapping {
	repos := p.strings("repos")
	m := mapping{policy: "image-tag"}
	var regs []string
	for _, r := range repos {
		out, lost := registryPrefixes(r)
		regs = append(regs, out...)
		if lost != "" {
			m.lost = append(m.lost, lost)
		}
	}
	m.lost = append(m.lost, "Gatekeeper matches repos as plain string prefixes (\"ghcr.io/loom\" also admits ghcr.io/loomer/app); "+
		"loomguard matches whole path components of the normalized image name")
	if len(regs) == 0 {
		m.lost = append(m.lost, "no repository can be expressed as a registry prefix; image-tag checks no registry")
	}
	m.settings = []string{"allowedRegistries: " + strings.Join(regs, ", ")}
	m.apply = func(pc *policies.PolicyConfigs) {
		for _, r := range regs {
			if !slices.Contains(pc.ImageTag.AllowedRegistries, r) {
				pc.ImageTag.AllowedRegistries = append(pc.ImageTag.AllowedRegistries, r)
			}
		}
	}
	return m
}

// registryPrefixes turns one K8sAllowedRepos entry into image-tag registry prefixes. An entry
// whose first component is not a registry host is on docker.io: "openpolicyagent" is either
// the organisation docker.io/openpolicyagent or the official image docker.io/library/openpolicyagent.
func registryPrefixes(repo string) ([]string, string) {
	r := strings.TrimSuffix(repo, "/")
	if r == "" {
		return nil, "an empty repo admits every image in Gatekeeper; loomguard cannot say that and checks the others"
	}
	last := r[strings.LastIndexByte(r, '/')+1:]
	if host, port, ok := strings.Cut(r, ":"); ok && !strings.Contains(r, "/") && host != "" && port != "" && strings.Trim(port, "0123456789") == "" {
		last = host // a registry host with its port: localhost:5000
	}
	if strings.ContainsAny(last, ":@") || strings.Contains(r, "://") {
		return nil, fmt.Sprintf("repo %q names part of a tag or digest, which a registry prefix cannot express", repo)
	}
	first, _, hasSlash := strings.Cut(r, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return []string{r}, ""
	}
	if r == "docker.io" {
		return []string{r}, ""
	}
	if !hasSlash {
		return []string{"docker.io/" + r, "docker.io/library/" + r}, ""
	}
	return []string{"docker.io/" + r}, ""
}

func requiredProbes(c *Constraint, p *params) mapping {
	m := mapping{policy: "health-probes"}
	probes := p.strings("probes")
	for _, pr := range probes {
		switch pr {
		case "livenessProbe", "readinessProbe":
			m.covers = append(m.covers, pr)
		default:
			m.lost = append(m.lost, fmt.Sprintf("probe %q: health-probes requires liveness and readiness probes only", pr))
		}
	}
	if types := p.strings("probeTypes"); len(types) > 0 {
		m.lost = append(m.lost, fmt.Sprintf("probeTypes %s: loomguard accepts a probe of any handler type", strings.Join(types, ", ")))
	}
	m.lost = append(m.lost, "loomguard does not require probes on the containers of Jobs, CronJobs and Pods with restartPolicy Never or OnFailure; Gatekeeper does")
	m.settings = []string{"probes required: " + strings.Join(probes, ", ")}
	m.apply = func(*policies.PolicyConfigs) {}
	return m
}

func replicaLimits(c *Constraint, p *params) mapping {
	_ = p.list("ranges")
	return mapping{instead: "high-availability asks a minimum replica count only of workloads with a label (environment=production by default) " +
		"and sets no maximum; keep a ValidatingAdmissionPolicy on spec.replicas"}
}

func pspPrivileged(c *Constraint, p *params) mapping {
	return mapping{policy: "no-privilege-escalation", covers: []string{"privileged"}, apply: func(*policies.PolicyConfigs) {}}
}

func pspAllowPrivilegeEscalation(c *Constraint, p *params) mapping {
	// A privileged container always escalates: the API server refuses privileged: true
	// with allowPrivilegeEscalation: false, so Gatekeeper denies every privileged container too.
	return mapping{policy: "no-privilege-escalation", covers: []string{"allowPrivilegeEscalation", "privileged"}, apply: func(*policies.PolicyConfigs) {}}
}

func pspCapabilities(c *Constraint, p *params) mapping {
	m := mapping{policy: "drop-all-capabilities"}
	drop := p.strings("requiredDropCapabilities")
	switch {
	case containsFold(drop, "ALL"):
		m.covers = append(m.covers, "drop")
	case len(drop) > 0:
		m.lost = append(m.lost, fmt.Sprintf("requiredDropCapabilities %s: loomguard requires dropping ALL, which also drops these", strings.Join(drop, ", ")))
		m.covers = append(m.covers, "drop")
	}
	allowedCaps := p.strings("allowedCapabilities")
	var add []string
	if containsFold(allowedCaps, "*") {
		m.lost = append(m.lost, `allowedCapabilities "*": loomguard has no wildcard; only the capabilities of allowedAdd may be added`)
	} else {
		m.covers = append(m.covers, "add")
		for _, a := range allowedCaps {
			a = strings.ToUpper(strings.TrimPrefix(strings.ToUpper(a), "CAP_"))
			if a == "ALL" || a == "" {
				continue
			}
			add = append(add, a)
		}
		if slices.Contains(add, "NET_BIND_SERVICE") {
			m.lost = append(m.lost, "NET_BIND_SERVICE: loomguard allows it only to a container that declares a containerPort below 1024")
		}
	}
	m.settings = []string{"allowedAdd: " + strings.Join(add, ", ")}
	m.apply = func(pc *policies.PolicyConfigs) {
		for _, a := range add {
			if !slices.Contains(pc.DropAllCapabilities.AllowedAdd, a) {
				pc.DropAllCapabilities.AllowedAdd = append(pc.DropAllCapabilities.AllowedAdd, a)
			}
		}
	}
	return m
}

func pspReadOnlyRootFilesystem(c *Constraint, p *params) mapping {
	return mapping{policy: "read-only-root-filesystem", covers: []string{"readOnlyRootFilesystem"},
		notes: []string{"loomguard does not check ephemeral containers (kubectl debug) for a read-only root"},
		apply: func(*policies.PolicyConfigs) {}}
}

func pspHostNamespace(c *Constraint, p *params) mapping {
	return mapping{policy: "host-isolation", covers: []string{"hostPID", "hostIPC"}, apply: func(*policies.PolicyConfigs) {}}
}

func pspHostNetworkingPorts(c *Constraint, p *params) mapping {
	m := mapping{policy: "host-isolation", apply: func(*policies.PolicyConfigs) {}}
	if p.boolean("hostNetwork") {
		m.lost = append(m.lost, "hostNetwork: true allows the host's network; loomguard never does")
	} else {
		m.covers = append(m.covers, "hostNetwork")
	}
	lo, okLo := p.integer("min")
	hi, okHi := p.integer("max")
	switch {
	case okLo && okHi && hi < max(lo, 1):
		m.covers = append(m.covers, "hostPort")
	case okLo || okHi:
		m.lost = append(m.lost, fmt.Sprintf("host ports from %d to %d are allowed by Gatekeeper; loomguard forbids every hostPort", lo, hi))
	}
	return m
}

func pspHostFilesystem(c *Constraint, p *params) mapping {
	m := mapping{policy: "host-isolation", covers: []string{"hostPath"}, apply: func(*policies.PolicyConfigs) {}}
	for _, a := range p.list("allowedHostPaths") {
		prefix, _ := a["pathPrefix"].(string)
		m.lost = append(m.lost, fmt.Sprintf("hostPath volumes under %q are allowed by Gatekeeper; loomguard forbids every hostPath volume (add an exception for the workloads that need one)", prefix))
	}
	return m
}

func pspVolumeTypes(c *Constraint, p *params) mapping {
	vols := p.strings("volumes")
	if slices.Contains(vols, "*") {
		return mapping{instead: `volumes "*" allows every volume type: there is nothing to enforce`}
	}
	if slices.Contains(vols, "hostPath") {
		return mapping{instead: "host-isolation cannot allow hostPath; " + pssInstead("restrictedVolumes", "restricted")}
	}
	return mapping{policy: "host-isolation", covers: []string{"hostPath"},
		settings: []string{"hostPath volumes forbidden"},
		lost:     []string{fmt.Sprintf("only hostPath is forbidden: loomguard has no allow-list of volume types (%s)", strings.Join(vols, ", "))},
		apply:    func(*policies.PolicyConfigs) {}}
}

func pspSeccomp(c *Constraint, p *params) mapping {
	allowed := p.strings("allowedProfiles")
	if slices.Contains(allowed, "*") {
		return mapping{instead: `allowedProfiles "*" allows every profile: there is nothing to enforce`}
	}
	m := mapping{policy: "seccomp-profile", covers: []string{"profile"}}
	var types []string
	add := func(t string) {
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	for _, a := range allowed {
		switch {
		case a == "RuntimeDefault" || a == "runtime/default" || a == "docker/default":
			add("RuntimeDefault")
		case a == "Localhost" || strings.HasPrefix(a, "localhost/"):
			add("Localhost")
		case strings.EqualFold(a, "unconfined"):
			m.lost = append(m.lost, "Unconfined is allowed by Gatekeeper; loomguard never allows it")
		}
	}
	if files := p.strings("allowedLocalhostFiles"); slices.Contains(types, "Localhost") && !slices.Contains(files, "*") {
		m.lost = append(m.lost, "loomguard allows any Localhost profile; Gatekeeper only the listed files")
	}
	if len(types) == 0 {
		types = []string{"RuntimeDefault"}
		m.lost = append(m.lost, "no allowed profile is RuntimeDefault or Localhost; loomguard allows RuntimeDefault")
	}
	m.notes = append(m.notes, "loomguard reads securityContext.seccompProfile only, not the deprecated seccomp annotations")
	m.settings = []string{"allowedTypes: " + strings.Join(types, ", ")}
	m.apply = func(pc *policies.PolicyConfigs) {
		for _, t := range types {
			if !slices.Contains(pc.SeccompProfile.AllowedTypes, t) {
				pc.SeccompProfile.AllowedTypes = append(pc.SeccompProfile.AllowedTypes, t)
			}
		}
	}
	return m
}

func pspAllowedUsers(c *Constraint, p *params) mapping {
	user := p.object("runAsUser")
	rule := user.str("rule")
	var groups []string
	for _, g := range []string{"runAsGroup", "supplementalGroups", "fsGroup"} {
		if r := p.object(g).str("rule"); r != "" && r != "RunAsAny" {
			groups = append(groups, g+" "+r)
		}
	}
	groupLoss := ""
	if len(groups) > 0 {
		groupLoss = "group rules (" + strings.Join(groups, ", ") + "): loomguard does not restrict group IDs"
	}
	m := mapping{policy: "run-as-non-root", covers: []string{"runAsNonRoot", "runAsUser"}, apply: func(*policies.PolicyConfigs) {}}
	switch rule {
	case "MustRunAsNonRoot":
		m.lost = append(m.lost, "Gatekeeper accepts runAsNonRoot: true or a non-zero runAsUser; loomguard requires both")
	case "MustRunAs":
		var ranges []string
		root := false
		for _, r := range user.list("ranges") {
			lo, _ := toInt(r["min"], paramsPath.Child("runAsUser", "ranges"), &user.errs)
			hi, _ := toInt(r["max"], paramsPath.Child("runAsUser", "ranges"), &user.errs)
			ranges = append(ranges, fmt.Sprintf("%d-%d", lo, hi))
			root = root || lo <= 0
		}
		m.lost = append(m.lost, fmt.Sprintf("UID ranges %s: loomguard only requires a non-zero runAsUser and runAsNonRoot: true", strings.Join(ranges, ", ")))
		if root {
			m.lost = append(m.lost, "a range includes UID 0, which loomguard never allows")
		}
	default:
		if groupLoss == "" {
			groupLoss = "no rule restricts users or groups"
		}
		p.errs = append(p.errs, user.errs...)
		return mapping{instead: groupLoss + "; keep a ValidatingAdmissionPolicy for them"}
	}
	if groupLoss != "" {
		m.lost = append(m.lost, groupLoss)
	}
	p.errs = append(p.errs, user.errs...)
	return m
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return a
	}
	return out
}
