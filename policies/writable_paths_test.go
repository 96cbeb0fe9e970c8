package policies

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestWritablePaths(t *testing.T) {
	const noTmp = ` has a read-only root filesystem but no volume mounted at "/tmp"; mount an emptyDir there`
	loom := secCtxDeploySpec + ".containers[0]"
	// dropTmp removes the /tmp mount of container i.
	dropTmp := func(s *corev1.PodSpec, i int) {
		c := &s.Containers[i]
		c.VolumeMounts = c.VolumeMounts[1:]
	}
	dropTmpVolume := func(s *corev1.PodSpec) { s.Volumes = s.Volumes[1:] }
	size := resource.MustParse("256Mi")
	tmpVolume := corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}}
	tmpMount := corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"}
	// wantVolumes checks the pod's volumes and the mounts of container 0.
	want := func(volumes []corev1.Volume, mounts ...corev1.VolumeMount) func(*testing.T, *corev1.PodSpec) {
		return func(t *testing.T, s *corev1.PodSpec) {
			t.Helper()
			if !equality.Semantic.DeepEqual(s.Volumes, volumes) {
				t.Errorf("volumes = %+v\nwant %+v", s.Volumes, volumes)
			}
			if !equality.Semantic.DeepEqual(s.Containers[0].VolumeMounts, mounts) {
				t.Errorf("mounts = %+v\nwant %+v", s.Containers[0].VolumeMounts, mounts)
			}
		}
	}
	dataVolume := secCtxSpec().Volumes[1]
	dataMount := corev1.VolumeMount{Name: "data", MountPath: "/app/data"}
	cm := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "loom-config"},
		}}}
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	home := writablePaths(WritablePathsConfig{Paths: []string{"/tmp", "/home/loom"}})
	cache := writablePaths(WritablePathsConfig{Paths: []string{"/home/loom/.cache"}})

	secCtxRun(t, writablePaths(DefaultConfig().Policies.WritablePaths), []secCtxCase{
		{name: "compliant deployment"},
		{name: "compliant cronjob", kind: "CronJob"},
		{
			name:   "mount missing: the fix reuses the emptyDir volume of that name",
			edit:   func(s *corev1.PodSpec) { dropTmp(s, 0) },
			want:   field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
			fixed:  true,
			verify: want([]corev1.Volume{tmpVolume, dataVolume}, dataMount, tmpMount),
		},
		{
			name:   "pod: mount and volume missing: the fix injects both, with the sizeLimit",
			kind:   "Pod",
			edit:   func(s *corev1.PodSpec) { dropTmp(s, 0); dropTmpVolume(s) },
			want:   field.ErrorList{secCtxRequired(secCtxPodSpec+".containers[0].volumeMounts", `container "loom"`+noTmp)},
			fixed:  true,
			verify: want([]corev1.Volume{dataVolume, tmpVolume}, dataMount, tmpMount),
		},
		{
			name: "cronjob: init and regular containers share one injected volume",
			kind: "CronJob",
			edit: func(s *corev1.PodSpec) {
				dropTmp(s, 0)
				dropTmpVolume(s)
				s.InitContainers = []corev1.Container{secCtxContainer("migrate")}
				s.InitContainers[0].VolumeMounts = nil
			},
			want: field.ErrorList{
				secCtxRequired(secCtxCronJobSpec+".initContainers[0].volumeMounts", `container "migrate"`+noTmp),
				secCtxRequired(secCtxCronJobSpec+".containers[0].volumeMounts", `container "loom"`+noTmp),
			},
			fixed: true,
			verify: func(t *testing.T, s *corev1.PodSpec) {
				want([]corev1.Volume{dataVolume, tmpVolume}, dataMount, tmpMount)(t, s)
				if !equality.Semantic.DeepEqual(s.InitContainers[0].VolumeMounts, []corev1.VolumeMount{tmpMount}) {
					t.Errorf("init mounts = %+v", s.InitContainers[0].VolumeMounts)
				}
			},
		},
		{
			name: "a writable root is not concerned",
			edit: func(s *corev1.PodSpec) {
				dropTmp(s, 0)
				s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
				s.Containers = append(s.Containers, secCtxContainer("dolt"))
				s.Containers[1].SecurityContext.ReadOnlyRootFilesystem = new(false)
				dropTmp(s, 1)
			},
		},
		{
			name: "ephemeral containers are not concerned",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) {
				e := secCtxContainer("debug")
				e.VolumeMounts = nil
				s.EphemeralContainers = []corev1.EphemeralContainer{secCtxEphemeral(e)}
			},
		},
		{
			name: "a trailing slash in the mountPath is cleaned",
			edit: func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].MountPath = "/tmp/" },
		},
		{
			name: "a mount at / does not count",
			edit: func(s *corev1.PodSpec) {
				s.Volumes = append(s.Volumes, emptyDir("scratch"))
				s.Containers[0].VolumeMounts[0] = corev1.VolumeMount{Name: "scratch", MountPath: "/"}
			},
			want:  field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
			fixed: true,
			verify: want([]corev1.Volume{tmpVolume, dataVolume, emptyDir("scratch")},
				corev1.VolumeMount{Name: "scratch", MountPath: "/"}, dataMount, tmpMount),
		},
		{
			name: "a sibling with a common prefix does not count",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].VolumeMounts[0] = corev1.VolumeMount{Name: "scratch", MountPath: "/tmpfs"}
			},
			want:   field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
			fixed:  true,
			verify: want([]corev1.Volume{tmpVolume, dataVolume}, corev1.VolumeMount{Name: "scratch", MountPath: "/tmpfs"}, dataMount, tmpMount),
		},
		{
			name: "a read-only mount does not make the path writable; the fix backs off",
			kind: "Pod",
			edit: func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].ReadOnly = true },
			want: field.ErrorList{secCtxInvalid(secCtxPodSpec+".containers[0].volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
			after: field.ErrorList{secCtxInvalid(secCtxPodSpec+".containers[0].volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
		},
		{
			name: "a configMap volume is read-only",
			edit: func(s *corev1.PodSpec) { s.Volumes[0] = cm("tmp") },
			want: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
			after: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
		},
		{
			name: "a read-only claim is read-only",
			edit: func(s *corev1.PodSpec) {
				s.Volumes[0] = corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "scratch", ReadOnly: true}}}
			},
			want: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
			after: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
		},
		{
			name: "a read-only inline CSI volume is read-only (the reported case)",
			edit: func(s *corev1.PodSpec) {
				s.Volumes[0] = corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "inline.storage.example", ReadOnly: new(true)}}}
			},
			want: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
			after: field.ErrorList{secCtxInvalid(loom+".volumeMounts[0]", "/tmp",
				`container "loom" has a read-only root filesystem and must be able to write to "/tmp", but volume "tmp" mounted at "/tmp" is read-only; mount a writable emptyDir there`)},
		},
		{
			name: "a writable inline CSI volume and a writable iSCSI volume are writable",
			edit: func(s *corev1.PodSpec) {
				s.Volumes[0] = corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "inline.storage.example", ReadOnly: new(false)}}}
				s.Volumes[1] = corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{TargetPortal: "10.0.0.1", IQN: "iqn.2001-04.com.example:x", Lun: 0}}}
			},
		},
		{
			name: "back off: a volume of that name that is not an emptyDir",
			edit: func(s *corev1.PodSpec) {
				dropTmp(s, 0)
				s.Volumes[0] = cm("tmp")
			},
			want:  field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
			after: field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
		},
		{
			name: "back off from a container that mounts that name elsewhere, fix the others",
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].VolumeMounts[0].MountPath = "/scratch"
				s.Containers = append(s.Containers, secCtxContainer("dolt"))
				dropTmp(s, 1)
			},
			want: field.ErrorList{
				secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp),
				secCtxRequired(secCtxDeploySpec+".containers[1].volumeMounts", `container "dolt"`+noTmp),
			},
			fixed: true,
			after: field.ErrorList{secCtxRequired(loom+".volumeMounts", `container "loom"`+noTmp)},
			verify: func(t *testing.T, s *corev1.PodSpec) {
				if !equality.Semantic.DeepEqual(s.Containers[1].VolumeMounts, []corev1.VolumeMount{dataMount, tmpMount}) {
					t.Errorf("dolt mounts = %+v", s.Containers[1].VolumeMounts)
				}
				if len(s.Volumes) != 2 {
					t.Errorf("volumes = %+v, want the existing two", s.Volumes)
				}
			},
		},
		{
			name:   "config: several paths; no sizeLimit",
			policy: &home,
			kind:   "Pod",
			edit:   func(s *corev1.PodSpec) { dropTmp(s, 0); dropTmpVolume(s) },
			want: field.ErrorList{
				secCtxRequired(secCtxPodSpec+".containers[0].volumeMounts", `container "loom"`+noTmp),
				secCtxRequired(secCtxPodSpec+".containers[0].volumeMounts",
					`container "loom" has a read-only root filesystem but no volume mounted at "/home/loom"; mount an emptyDir there`),
			},
			fixed: true,
			verify: want([]corev1.Volume{dataVolume, emptyDir("tmp"), emptyDir("home-loom")},
				dataMount, tmpMount, corev1.VolumeMount{Name: "home-loom", MountPath: "/home/loom"}),
		},
		{
			name:   "config: a parent directory covers the path",
			policy: &cache,
			edit: func(s *corev1.PodSpec) {
				s.Volumes = append(s.Volumes, emptyDir("home"))
				s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "home", MountPath: "/home/loom"})
			},
		},
		{
			name:   "config: the deepest covering mount decides",
			policy: &cache,
			edit: func(s *corev1.PodSpec) {
				s.Volumes = append(s.Volumes, emptyDir("home"), cm("config"))
				s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts,
					corev1.VolumeMount{Name: "home", MountPath: "/home"},
					corev1.VolumeMount{Name: "config", MountPath: "/home/loom"})
			},
			want: field.ErrorList{secCtxInvalid(loom+".volumeMounts[3]", "/home/loom",
				`container "loom" has a read-only root filesystem and must be able to write to "/home/loom/.cache", but volume "config" mounted at "/home/loom" is read-only; mount a writable emptyDir there`)},
			after: field.ErrorList{secCtxInvalid(loom+".volumeMounts[3]", "/home/loom",
				`container "loom" has a read-only root filesystem and must be able to write to "/home/loom/.cache", but volume "config" mounted at "/home/loom" is read-only; mount a writable emptyDir there`)},
		},
	})
}

func TestWritablePathVolumeNames(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/tmp", "tmp"},
		{"/home/loom", "home-loom"},
		{"/app/.keys.json", "app-keys-json"},
		{"/Var/Cache_Dir", "var-cache-dir"},
		{"/---", "writable"},
		{"/" + strings.Repeat("a", 62) + "/b", strings.Repeat("a", 62)},
		{"/" + strings.Repeat("x", 80), strings.Repeat("x", 63)},
	} {
		if got := volumeNameForPath(tc.path); got != tc.want {
			t.Errorf("volumeNameForPath(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	got := writablePathSpecs([]string{"/a.b", "/tmp", "/a/b", "/tmp/", "/", "relative"})
	want := []writablePath{{"/a.b", "a-b"}, {"/tmp", "tmp"}, {"/a/b", "a-b-2"}}
	if !slices.Equal(got, want) {
		t.Errorf("writablePathSpecs = %+v, want %+v", got, want)
	}
}

// TestWritablePathsInvalidConfig checks that the builder survives a config that
// Config.Validate refuses: Catalog runs on such configs to list the policy IDs.
func TestWritablePathsInvalidConfig(t *testing.T) {
	p := writablePaths(WritablePathsConfig{Paths: []string{"tmp", "/", "/tmp"}, SizeLimit: "lots"})
	spec := secCtxSpec()
	spec.Containers[0].VolumeMounts = spec.Containers[0].VolumeMounts[1:]
	spec.Volumes = spec.Volumes[1:]
	w := secCtxWorkload(t, "Pod", spec)
	if !p.Fix(w) {
		t.Fatal("Fix changed nothing")
	}
	secCtxAssertErrors(t, "Check after Fix", p.Check(w), nil)
	if v := w.Spec.Volumes[len(w.Spec.Volumes)-1]; v.Name != "tmp" || v.EmptyDir == nil || v.EmptyDir.SizeLimit != nil {
		t.Errorf("injected volume = %+v, want an emptyDir named tmp without sizeLimit", v)
	}
}

// TestReadOnlyVolumeSources walks corev1.VolumeSource: every source type with a ReadOnly
// field, set to true, makes the volume read only, and left false does not; so a source that
// a new Kubernetes version adds with a readOnly flag fails here until readOnlyVolume knows it.
func TestReadOnlyVolumeSources(t *testing.T) {
	alwaysReadOnly := map[string]bool{"ConfigMap": true, "Secret": true, "DownwardAPI": true, "Projected": true, "Image": true}
	vt := reflect.TypeFor[corev1.VolumeSource]()
	flags := 0
	for i := range vt.NumField() {
		f := vt.Field(i)
		st := f.Type.Elem()
		for _, readOnly := range []bool{false, true} {
			var v corev1.VolumeSource
			src := reflect.New(st)
			ro, hasFlag := st.FieldByName("ReadOnly")
			if !hasFlag && readOnly {
				continue
			}
			if hasFlag && readOnly {
				switch ro.Type.Kind() {
				case reflect.Bool:
					src.Elem().FieldByIndex(ro.Index).SetBool(true)
				case reflect.Pointer:
					b := true
					src.Elem().FieldByIndex(ro.Index).Set(reflect.ValueOf(&b))
				}
			}
			reflect.ValueOf(&v).Elem().Field(i).Set(src)
			want := alwaysReadOnly[f.Name] || (hasFlag && readOnly)
			if got := readOnlyVolume(&v); got != want {
				t.Errorf("%s with readOnly %v: read-only = %v, want %v", f.Name, readOnly, got, want)
			}
			if hasFlag && readOnly {
				flags++
			}
		}
	}
	if flags < 18 {
		t.Errorf("only %d volume sources with a readOnly flag: the walk is broken", flags)
	}
}
