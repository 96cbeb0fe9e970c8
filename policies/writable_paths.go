package policies

import (
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// writable-paths requires every init and regular container whose effective
// readOnlyRootFilesystem is true to have each configured path (default /tmp) on a writable
// volume: the deepest volumeMount whose cleaned mountPath equals the path or is a parent
// directory of it ("/" does not count) must not be read only. A mount is read only when it
// says readOnly: true, when its volume is a configMap, secret, downwardAPI, projected or
// image volume (the kubelet always mounts those read only), or when its volume source sets
// its own readOnly flag (persistentVolumeClaim, csi, iscsi, rbd, azureDisk, nfs, and every
// other source that has one). Loom writes to /tmp and fails at run time if it
// cannot (LOOM.md, "writable paths").
//
// Ephemeral containers are exempt, like in read-only-root-filesystem: they cannot bring
// volumes of their own. A container without a read-only root is not concerned.
//
// The fix mounts an emptyDir (sizeLimit from the config when set) at each uncovered path of
// each affected container. The volume is named after the path as a DNS-1123 label ("/tmp" ->
// "tmp", "/home/loom" -> "home-loom"); an existing emptyDir volume of that name is reused.
// The fix backs off, leaving the violation, when a volume of that name exists and is not an
// emptyDir, when the container already mounts a volume of that name at another path, or when
// a read-only mount covers the path (a mount under it would sit inside a read-only volume).
// It never duplicates a volume or a mount, and it runs after read-only-root-filesystem's fix,
// so that a root the fix made read only gets its writable paths too.
func writablePaths(cfg WritablePathsConfig) Policy {
	paths := writablePathSpecs(cfg.Paths)
	// The config is validated before an engine uses it, but Catalog also runs on invalid
	// configs (to list policy IDs), so a bad quantity must not panic here.
	var sizeLimit *resource.Quantity
	if q, err := resource.ParseQuantity(cfg.SizeLimit); cfg.SizeLimit != "" && err == nil {
		sizeLimit = &q
	}
	return Policy{
		Fields: []string{
			"{initContainers,containers}[*].securityContext.readOnlyRootFilesystem",
			"{initContainers,containers}[*].volumeMounts",
			"volumes",
		},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			for _, c := range w.Containers() {
				if !readOnlyRoot(c) {
					continue
				}
				for _, wp := range paths {
					j := coveringMount(c.Container, wp.path)
					if j < 0 {
						errs = append(errs, field.Required(c.Path.Child("volumeMounts"),
							containerPhrase(c.Name)+" has a read-only root filesystem but no volume mounted at "+strconv.Quote(wp.path)+"; mount an emptyDir there"))
						continue
					}
					if m := &c.VolumeMounts[j]; readOnlyMount(w.Spec, m) {
						errs = append(errs, field.Invalid(c.Path.Child("volumeMounts").Index(j), m.MountPath,
							containerPhrase(c.Name)+" has a read-only root filesystem and must be able to write to "+strconv.Quote(wp.path)+
								", but volume "+strconv.Quote(m.Name)+" mounted at "+strconv.Quote(m.MountPath)+" is read-only; mount a writable emptyDir there"))
					}
				}
			}
			return errs
		},
		// Cleared: every init and regular container (read-only root or not) mounts each path
		// itself, and every mount at the path is writable: not readOnly, of an emptyDir
		// volume. Every mountPath must already be clean (no ".", "..", "//" or trailing "/"),
		// so that the mount at the path is the one the check finds; the fix then adds none.
		Clear: func(t celTemplate) (clearance, bool) {
			// One pass over the mounts for what every mount must meet, one per path for the
			// mount it needs.
			volumes := t.list("volumes")
			mount := []string{"size(m.?mountPath.orValue('')) <= " + strconv.Itoa(celMaxString), "m.?mountPath.orValue('').matches(" + celString(cleanMountPath) + ")"}
			var exists []string
			for _, wp := range paths {
				p := celString(wp.path)
				mount = append(mount, "(m.?mountPath.orValue('') != "+p+" || (m.?readOnly.orValue(false) != true && "+
					volumes+".exists(v, v.?name.orValue('') == m.?name.orValue('')) && "+
					volumes+".all(v, v.?name.orValue('') != m.?name.orValue('') || has(v.emptyDir))))")
				exists = append(exists, "c.?volumeMounts.orValue([]).exists(m, m.?mountPath.orValue('') == "+p+")")
			}
			conds := append([]string{sizedList("c.?volumeMounts.orValue([])", celMaxItems, "m", strings.Join(mount, " && "))}, exists...)
			// Every mount's path against cleanMountPath; for each path, every mount, and for a
			// mount at the path every volume, twice.
			perContainer := uint64(celMaxItems)*(celRegexCost(celMaxString, len(cleanMountPath))+30) +
				uint64(len(paths))*uint64(celMaxItems)*(40+2*uint64(celMaxVolumes)*20)
			return clearance{NonEphemeral: conds, Cost: uint64(celMaxContainers) * perContainer}, true
		},
		// No fix: every init and regular container mounts something at each path or mounts
		// the path's volume, whatever the volume is.
		NoFix: func(t celTemplate) (clearance, bool) {
			mounts := "c.?volumeMounts.orValue([])"
			conds := []string{"size(" + mounts + ") <= " + strconv.Itoa(celMaxItems)}
			for _, wp := range paths {
				conds = append(conds, mounts+".exists(m, m.?mountPath.orValue('') == "+celString(wp.path)+" || m.?name.orValue('') == "+celString(wp.volume)+")")
			}
			return clearance{NonEphemeral: conds, Cost: uint64(celMaxContainers) * uint64(len(paths)) * uint64(celMaxItems) * 40}, true
		},
		Fix: func(w *Workload) bool {
			changed := false
			for _, wp := range paths {
				vol := -1
				for i := range w.Spec.Volumes {
					if w.Spec.Volumes[i].Name == wp.volume {
						vol = i
						break
					}
				}
				if vol >= 0 && w.Spec.Volumes[vol].EmptyDir == nil {
					continue // the name belongs to another kind of volume: back off
				}
				for _, c := range w.Containers() {
					if !readOnlyRoot(c) || coveringMount(c.Container, wp.path) >= 0 || mountsVolume(c.Container, wp.volume) {
						continue
					}
					if vol < 0 {
						v := corev1.Volume{Name: wp.volume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
						if sizeLimit != nil {
							q := sizeLimit.DeepCopy()
							v.EmptyDir.SizeLimit = &q
						}
						w.Spec.Volumes = append(w.Spec.Volumes, v)
						vol = len(w.Spec.Volumes) - 1
					}
					c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: wp.volume, MountPath: wp.path})
					changed = true
				}
			}
			return changed
		},
	}
}

// cleanMountPath matches the absolute paths that path.Clean leaves as they are and that are
// not "/": segments of letters, digits, "_", "-" and ".", none of them "." or "..".
const cleanMountPath = `^(/([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+))+$`

// writablePath is one configured path with the name of the volume the fix mounts there.
type writablePath struct {
	path, volume string
}

// writablePathSpecs cleans the configured paths, drops duplicates, and names each path's
// volume, keeping the names distinct ("/a.b" and "/a/b" both give "a-b": the second becomes
// "a-b-2").
func writablePathSpecs(configured []string) []writablePath {
	out := make([]writablePath, 0, len(configured))
	used := map[string]bool{}
	for _, p := range configured {
		p = path.Clean(p)
		if !strings.HasPrefix(p, "/") || p == "/" || containsPath(out, p) {
			continue // invalid, refused by Config.Validate; or a duplicate
		}
		base := volumeNameForPath(p)
		name := base
		for n := 2; used[name]; n++ {
			suffix := "-" + strconv.Itoa(n)
			name = strings.TrimRight(base[:min(len(base), 63-len(suffix))], "-") + suffix
		}
		used[name] = true
		out = append(out, writablePath{path: p, volume: name})
	}
	return out
}

func containsPath(ps []writablePath, p string) bool {
	for _, wp := range ps {
		if wp.path == p {
			return true
		}
	}
	return false
}

// volumeNameForPath derives a DNS-1123 label from a path: lowercase, each run of other
// characters than [a-z0-9] becomes one "-", trimmed at both ends, at most 63 characters.
func volumeNameForPath(p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case ch >= 'A' && ch <= 'Z':
			b = append(b, ch+'a'-'A')
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
			b = append(b, ch)
		case len(b) > 0 && b[len(b)-1] != '-':
			b = append(b, '-')
		}
	}
	name := strings.TrimRight(string(b[:min(len(b), 63)]), "-")
	if name == "" {
		return "writable"
	}
	return name
}

// readOnlyRoot reports whether an init or regular container has readOnlyRootFilesystem: true.
func readOnlyRoot(c ContainerRef) bool {
	return c.Kind != Ephemeral && c.SecurityContext != nil && isTrue(c.SecurityContext.ReadOnlyRootFilesystem)
}

// coveringMount returns the index of the deepest volumeMount at p or at a parent directory
// of p, other than "/", or -1.
func coveringMount(c *corev1.Container, p string) int {
	best, bestLen := -1, 0
	for j := range c.VolumeMounts {
		mp := path.Clean(c.VolumeMounts[j].MountPath)
		if mp == "/" || len(mp) <= bestLen {
			continue
		}
		if mp == p || (strings.HasPrefix(p, mp) && p[len(mp)] == '/') {
			best, bestLen = j, len(mp)
		}
	}
	return best
}

// mountsVolume reports whether the container mounts the named volume anywhere.
func mountsVolume(c *corev1.Container, name string) bool {
	for j := range c.VolumeMounts {
		if c.VolumeMounts[j].Name == name {
			return true
		}
	}
	return false
}

// readOnlyMount reports whether writes through the mount fail: the mount is read only, or
// its volume is of a kind the kubelet always mounts read only, or its source says readOnly.
func readOnlyMount(spec *corev1.PodSpec, m *corev1.VolumeMount) bool {
	if m.ReadOnly {
		return true
	}
	for i := range spec.Volumes {
		if v := &spec.Volumes[i]; v.Name == m.Name {
			return readOnlyVolume(&v.VolumeSource)
		}
	}
	return false
}

// readOnlyVolume reports whether every mount of the volume is read only: a configMap,
// secret, downwardAPI, projected or image volume, or a source whose own readOnly flag is
// set (every such flag of corev1.VolumeSource: a test walks the type to keep this list
// whole).
func readOnlyVolume(v *corev1.VolumeSource) bool {
	switch {
	case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil, v.Image != nil:
		return true
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ReadOnly
	case v.CSI != nil:
		return isTrue(v.CSI.ReadOnly)
	case v.AzureDisk != nil:
		return isTrue(v.AzureDisk.ReadOnly)
	case v.GCEPersistentDisk != nil:
		return v.GCEPersistentDisk.ReadOnly
	case v.AWSElasticBlockStore != nil:
		return v.AWSElasticBlockStore.ReadOnly
	case v.NFS != nil:
		return v.NFS.ReadOnly
	case v.ISCSI != nil:
		return v.ISCSI.ReadOnly
	case v.Glusterfs != nil:
		return v.Glusterfs.ReadOnly
	case v.RBD != nil:
		return v.RBD.ReadOnly
	case v.FlexVolume != nil:
		return v.FlexVolume.ReadOnly
	case v.Cinder != nil:
		return v.Cinder.ReadOnly
	case v.CephFS != nil:
		return v.CephFS.ReadOnly
	case v.FC != nil:
		return v.FC.ReadOnly
	case v.AzureFile != nil:
		return v.AzureFile.ReadOnly
	case v.Quobyte != nil:
		return v.Quobyte.ReadOnly
	case v.PortworxVolume != nil:
		return v.PortworxVolume.ReadOnly
	case v.ScaleIO != nil:
		return v.ScaleIO.ReadOnly
	case v.StorageOS != nil:
		return v.StorageOS.ReadOnly
	}
	return false
}

// WritablePathsConfig configures writable-paths.
type WritablePathsConfig struct {
	Settings `json:",inline"`
	// Paths must each be covered by a volumeMount when the root filesystem is read only.
	Paths []string `json:"paths,omitempty"`
	// SizeLimit is the sizeLimit of the emptyDir volumes the fix injects ("" for none).
	SizeLimit string `json:"sizeLimit,omitempty"`
}

// Default requires /tmp, with emptyDir volumes of at most 256Mi.
func (c *WritablePathsConfig) Default() {
	c.Paths = []string{"/tmp"}
	c.SizeLimit = "256Mi"
}

// Validate requires clean absolute paths other than / and a positive sizeLimit, if any.
func (c *WritablePathsConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range c.Paths {
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			errs = append(errs, field.Invalid(fldPath.Child("paths").Index(i), p, "must be a clean absolute path other than /"))
		}
	}
	return append(errs, validateQuantity(fldPath.Child("sizeLimit"), c.SizeLimit, false)...)
}
