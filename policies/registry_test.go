package policies

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestRegistryCoherence proves that the places a policy's ID appears name the same set:
// the Registry, the JSON tags of PolicyConfigs (the keys a config may use), the catalog,
// the policies documented in docs/policies.md and the fixture directories in testdata.
// It also proves that each registration's Config points at the PolicyConfigs field that
// carries its ID, so that the settings and parameters read for a policy are its own.
func TestRegistryCoherence(t *testing.T) {
	var registered []string
	for _, r := range Registry() {
		registered = append(registered, r.ID)
	}
	want := slices.Sorted(slices.Values(registered))
	if !slices.Equal(want, slices.Compact(slices.Clone(want))) {
		t.Fatalf("the registry names an ID twice: %v", registered)
	}

	var pc PolicyConfigs
	v := reflect.ValueOf(&pc).Elem()
	fieldOf := map[uintptr]string{} // address of each field → its JSON tag
	var tags []string
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		tags = append(tags, tag)
		fieldOf[v.Field(i).Addr().Pointer()] = tag
	}
	expectSameIDs(t, "the JSON tags of PolicyConfigs", tags, want)
	for _, r := range Registry() {
		if got := fieldOf[reflect.ValueOf(r.Config(&pc)).Pointer()]; got != r.ID {
			t.Errorf("registration %s: Config returns the PolicyConfigs field tagged %q", r.ID, got)
		}
		if r.Description == "" || !r.DefaultAction.Valid() || r.DefaultAction == ActionOff {
			t.Errorf("registration %s: needs a description and a default action other than off (has %q, %q)", r.ID, r.Description, r.DefaultAction)
		}
	}

	var catalog []string
	for _, p := range Catalog(DefaultConfig()) {
		catalog = append(catalog, p.ID)
	}
	if !slices.Equal(catalog, registered) {
		t.Errorf("Catalog = %v, want the registry's order %v", catalog, registered)
	}

	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^## `([a-z0-9-]+)`$").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	expectSameIDs(t, "the policies documented in docs/policies.md", documented, want)

	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []string
	for _, d := range dirs {
		if d.IsDir() && d.Name() != "base" && d.Name() != "fuzz" {
			fixtures = append(fixtures, d.Name())
		}
	}
	expectSameIDs(t, "the fixture directories in testdata", fixtures, want)
}

func expectSameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	got = slices.Sorted(slices.Values(got))
	if !slices.Equal(got, want) {
		t.Errorf("%s are %v; the registry's IDs are %v", what, got, want)
	}
}

// TestRegistryActionPerPolicy proves, for every registered policy, that the config key
// policies.<id> reaches it: {action: off} silences it on a fixture it fails, and an unknown
// action is an error at policies.<id>.action.
func TestRegistryActionPerPolicy(t *testing.T) {
	for _, r := range Registry() {
		t.Run(r.ID, func(t *testing.T) {
			fails := yamlFiles(t, "testdata/"+r.ID+"/fail")
			if len(fails) == 0 {
				t.Fatalf("testdata/%s/fail holds no fixture", r.ID)
			}
			on := fixtureEngine(t)
			cfg, errs := LoadConfig([]byte("policies:\n  " + r.ID + ":\n    action: off\n"))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			off, err := NewEngine(cfg, fixtureClock)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fails {
				if !slices.Contains(policiesOf(evaluate(on, loadWorkload(t, f))), r.ID) {
					t.Errorf("%s: not reported with the default config", f)
				}
				if got := policiesOf(evaluate(off, loadWorkload(t, f))); slices.Contains(got, r.ID) {
					t.Errorf("%s: still reported with %s: {action: off}", f, r.ID)
				}
			}

			_, errs = LoadConfig([]byte("policies:\n  " + r.ID + ":\n    action: bogus\n"))
			want := field.ErrorList{field.NotSupported(field.NewPath("policies", r.ID, "action"), Action("bogus"), Actions())}
			if !reflect.DeepEqual(errs, want) {
				t.Errorf("{action: bogus}: errors %v, want %v", errs, want)
			}
		})
	}
}
