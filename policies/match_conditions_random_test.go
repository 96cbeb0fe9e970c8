package policies

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
)

// randomConfigs are configs that vary what the fixes do and which policies fix.
func randomConfigs(t testing.TB) map[string]*Config {
	out := testConfigs(t)
	for name, doc := range map[string]string{
		"seccomp-localhost-only": `
policies:
  seccomp-profile: {allowedTypes: [Localhost]}
`,
		"fixes-off-some": `
policies:
  read-only-root-filesystem: {fix: false}
  drop-all-capabilities: {action: audit}
  run-as-non-root: {action: warn}
`,
		"warn-default": `
defaultAction: warn
policies:
  writable-paths: {paths: [/tmp, /var/run]}
  required-labels: {labels: [app, team]}
  resource-limits: {maxLimitRequestRatio: 0}
`,
		"rorf-off-wp-on": `
policies:
  read-only-root-filesystem: {action: off}
`,
		"wp-off-rorf-on": `
policies:
  writable-paths: {action: off}
`,
		"team-label-160-values": "policies:\n  required-labels: {labels: [app, version, environment, team], allowedValues: {environment: [development, staging, production], team: [a, " + teamValues(160) + "]}}\n",
		"exempt": `
exemptNamespaces: [kube-system]
`,
	} {
		cfg, errs := LoadConfig([]byte(doc))
		if len(errs) > 0 {
			t.Fatalf("config %s: %v", name, errs.ToAggregate())
		}
		out[name] = cfg
	}
	return out
}

type obj = map[string]any

func teamValues(n int) string {
	var vs []string
	for i := range n {
		vs = append(vs, fmt.Sprintf("team-%03d", i))
	}
	return strings.Join(vs, ", ")
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.Intn(len(xs))] }

// randContainer returns a container, mostly compliant, with random perturbations.
func randContainer(r *rand.Rand, name string, p float64) obj {
	c := obj{"name": name, "image": "ghcr.io/loom/loom:0.9.3"}
	maybe := func() bool { return r.Float64() < p }
	sc := obj{}
	if !maybe() {
		sc["allowPrivilegeEscalation"] = false
	} else if r.Intn(2) == 0 {
		sc["allowPrivilegeEscalation"] = pick(r, true, false)
	}
	if maybe() {
		sc["privileged"] = pick(r, true, false)
	}
	if !maybe() {
		sc["readOnlyRootFilesystem"] = true
	} else if r.Intn(2) == 0 {
		sc["readOnlyRootFilesystem"] = pick(r, true, false)
	}
	if maybe() {
		sc["runAsNonRoot"] = pick(r, true, false)
	}
	if maybe() {
		sc["runAsUser"] = pick(r, 0, 1000)
	}
	caps := obj{}
	if !maybe() {
		caps["drop"] = []any{"ALL"}
	} else {
		switch r.Intn(5) {
		case 0:
			caps["drop"] = []any{"all"}
		case 1:
			caps["drop"] = []any{"CAP_ALL"}
		case 2:
			caps["drop"] = []any{}
		case 3:
			caps["drop"] = []any{"NET_RAW", "ALL"}
		}
	}
	if maybe() {
		caps["add"] = []any{pick[any](r, "NET_BIND_SERVICE", "SYS_ADMIN", "cap_sys_admin")}
	}
	if maybe() {
		if len(caps) > 0 || r.Intn(2) == 0 {
			sc["capabilities"] = caps
		}
	} else {
		sc["capabilities"] = caps
	}
	if maybe() {
		sc["seccompProfile"] = pick[any](r, obj{"type": "RuntimeDefault"}, obj{"type": "Localhost"}, obj{"type": "Localhost", "localhostProfile": "x.json"}, obj{"type": "Unconfined"})
	}
	switch {
	case maybe() && r.Intn(3) == 0:
		// no securityContext
	case maybe() && r.Intn(3) == 0:
		c["securityContext"] = obj{}
	default:
		c["securityContext"] = sc
	}
	res := obj{}
	lim := obj{"cpu": "500m", "memory": "512Mi"}
	req := obj{"cpu": "100m", "memory": "256Mi"}
	for _, k := range []string{"cpu", "memory"} {
		if maybe() {
			switch r.Intn(4) {
			case 0:
				delete(lim, k)
			case 1:
				delete(req, k)
			case 2:
				lim[k] = "0"
			case 3:
				delete(lim, k)
				delete(req, k)
			}
		}
	}
	if len(lim) > 0 {
		res["limits"] = lim
	}
	if len(req) > 0 {
		res["requests"] = req
	}
	if !(maybe() && r.Intn(3) == 0) {
		c["resources"] = res
	}
	mounts := []any{obj{"name": "tmp", "mountPath": "/tmp"}}
	if maybe() {
		switch r.Intn(6) {
		case 0:
			mounts = nil
		case 1:
			mounts = []any{obj{"name": "tmp", "mountPath": "/other"}}
		case 2:
			mounts = []any{obj{"name": "x", "mountPath": "/tmp"}}
		case 3:
			mounts = []any{obj{"name": "x", "mountPath": "/tmp/"}}
		case 4:
			mounts = []any{obj{"name": "x", "mountPath": "/"}}
		case 5:
			mounts = []any{obj{"name": "x", "mountPath": "/tmp/."}, obj{"name": "cache", "mountPath": "/var/run"}}
		}
	}
	if r.Intn(4) == 0 {
		mounts = append(mounts, obj{"name": "cache", "mountPath": "/var/run"}, obj{"name": "tmp-2", "mountPath": "/var/cache/loom"})
	}
	if mounts != nil {
		c["volumeMounts"] = mounts
	}
	c["livenessProbe"] = obj{"httpGet": obj{"path": "/", "port": 8081}}
	c["readinessProbe"] = obj{"httpGet": obj{"path": "/", "port": 8081}}
	return c
}

func randLabels(r *rand.Rand, p float64) obj {
	l := obj{"app": "loom", "version": "1", "environment": "production", "team": "a"}
	for _, k := range []string{"app", "version", "environment", "team"} {
		if r.Float64() < p {
			switch r.Intn(3) {
			case 0:
				delete(l, k)
			case 1:
				l[k] = ""
			case 2:
				l[k] = "bogus"
			}
		}
	}
	return l
}

func randPodSpec(r *rand.Rand, p float64) obj {
	spec := obj{}
	n := 1 + r.Intn(2)
	cs := []any{}
	for i := range n {
		cs = append(cs, randContainer(r, "c"+strconv.Itoa(i), p))
	}
	switch {
	case r.Float64() < p/4:
		spec["containers"] = nil // JSON null
	case r.Float64() < p/4:
		spec["containers"] = []any{}
	case r.Float64() < p/4:
		// absent
	default:
		spec["containers"] = cs
	}
	if r.Float64() < p {
		ic := randContainer(r, "init", p)
		if r.Intn(2) == 0 {
			ic["restartPolicy"] = "Always"
		}
		spec["initContainers"] = []any{ic}
	}
	if r.Float64() < p/2 {
		ec := randContainer(r, "debug", p)
		delete(ec, "resources")
		delete(ec, "livenessProbe")
		delete(ec, "readinessProbe")
		delete(ec, "volumeMounts")
		spec["ephemeralContainers"] = []any{ec}
	}
	psc := obj{"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": obj{"type": "RuntimeDefault"}}
	for _, k := range []string{"runAsNonRoot", "runAsUser", "seccompProfile"} {
		if r.Float64() < p {
			delete(psc, k)
		}
	}
	if r.Float64() < p/3 {
		psc["seccompProfile"] = pick[any](r, obj{"type": "Unconfined"}, obj{"type": "Localhost", "localhostProfile": "x.json"}, obj{"type": "Localhost"})
	}
	if r.Float64() < p/3 {
		psc["runAsUser"] = 0
	}
	if !(r.Float64() < p/3) {
		spec["securityContext"] = psc
	}
	vols := []any{obj{"name": "tmp", "emptyDir": obj{}}, obj{"name": "cache", "emptyDir": obj{}}, obj{"name": "tmp-2", "emptyDir": obj{}}, obj{"name": "x", "emptyDir": obj{}}}
	if r.Float64() < p {
		vols[0] = pick[any](r, obj{"name": "tmp", "configMap": obj{"name": "cm"}}, obj{"name": "tmp", "hostPath": obj{"path": "/tmp"}})
	}
	if r.Float64() < p/2 {
		vols = vols[1:]
	}
	spec["volumes"] = vols
	if r.Float64() < p/4 {
		spec["os"] = obj{"name": pick(r, "linux", "windows")}
	}
	if r.Float64() < p/3 {
		spec["restartPolicy"] = pick(r, "Always", "Never", "OnFailure")
	}
	return spec
}

var (
	gvkPod        = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvkDeployment = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	gvkReplicaSet = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	gvkJob        = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
	gvkCronJob    = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
	gvkDaemonSet  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}
	gvkSTS        = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
)

func randObject(r *rand.Rand, p float64) (schema.GroupVersionKind, []byte) {
	gvk := pick(r, gvkPod, gvkDeployment, gvkReplicaSet, gvkJob, gvkCronJob, gvkDaemonSet, gvkSTS)
	meta := obj{"name": "web", "labels": randLabels(r, p)}
	if r.Float64() < p/2 {
		meta["ownerReferences"] = []any{obj{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": pick(r, true, false)}}
	}
	spec := randPodSpec(r, p)
	tmpl := obj{"metadata": obj{"labels": randLabels(r, p)}, "spec": spec}
	if r.Float64() < p/4 {
		delete(tmpl, "metadata")
	}
	o := obj{"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind, "metadata": meta}
	switch gvk.Kind {
	case "Pod":
		o["spec"] = spec
	case "CronJob":
		o["spec"] = obj{"schedule": "* * * * *", "jobTemplate": obj{"spec": obj{"template": tmpl}}}
	default:
		o["spec"] = obj{"replicas": 3, "selector": obj{"matchLabels": obj{"app": "loom"}}, "template": tmpl}
	}
	js, _ := json.Marshal(o)
	return gvk, js
}

// TestMatchConditionsSoundRandom judges random, mostly compliant objects of every kind with
// both webhooks' conditions under the test configs and more, and checks that whatever is
// cleared needs nothing from loomguard. The seed is fixed per config; MATCH_CONDITIONS_RANDOM_N
// sets the objects per config (200 by default).
func TestMatchConditionsSoundRandom(t *testing.T) {
	n := 200
	if s := os.Getenv("MATCH_CONDITIONS_RANDOM_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("MATCH_CONDITIONS_RANDOM_N=%q: want a positive count", s)
		}
	}
	dec := NewDecoder()
	cfgs := randomConfigs(t)
	for _, name := range sortedKeys(cfgs) {
		cfg := cfgs[name]
		t.Run(name, func(t *testing.T) {
			e, err := NewEngine(cfg, fixtureClock)
			if err != nil {
				t.Fatal(err)
			}
			vc, mc := MatchConditions(cfg), MutatingMatchConditions(cfg)
			if vc == nil || mc == nil {
				t.Logf("%s: no conditions (%s%s): nothing is cleared", name, WhyNoMatchConditions(cfg, false), WhyNoMatchConditions(cfg, true))
				return
			}
			jv, jm := newCELJudge(t, vc), newCELJudge(t, mc)
			r := rand.New(rand.NewSource(int64(crc32.ChecksumIEEE([]byte(name)))))
			var mcleared, vcleared, bad int
			for i := range n {
				p := []float64{0.05, 0.15, 0.4}[i%3]
				gvk, js := randObject(r, p)
				decode := func() *Workload {
					o, err := dec.Decode(js, gvk, false)
					if err != nil {
						t.Fatalf("decode: %v\n%s", err, js)
					}
					w, _ := NewWorkload(o)
					return w
				}
				const ns = "team-a"
				mCalls := jm.calls(t, decode().Object, gvk, ns, admission.Create, "")
				vCalls := jv.calls(t, decode().Object, gvk, ns, admission.Create, "")
				if !mCalls {
					mcleared++
					if fixed := e.Mutate(decode(), ns); len(fixed) > 0 {
						if bad++; bad < 5 {
							t.Errorf("mutating cleared, but fixes %v\n%s", fixed, js)
						}
					}
				}
				if !vCalls {
					vcleared++
					if mCalls {
						t.Errorf("validating cleared, mutating not\n%s", js)
					}
					if why, _ := clearedButFlagged(e, dec, js, gvk, ns); why != "" {
						if bad++; bad < 5 {
							t.Errorf("validating cleared, but %s\n%s", why, js)
						}
					}
				}
			}
			t.Logf("%s: %d objects, mutating cleared %d, validating cleared %d", name, n, mcleared, vcleared)
		})
	}
}
