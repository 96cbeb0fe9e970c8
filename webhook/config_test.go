package webhook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loomguard/loomguard/policies"
)

// configMapDir lays out a directory the way the kubelet mounts a ConfigMap: the file is a
// symlink through ..data, and an update swaps ..data to a new timestamped directory.
type configMapDir struct {
	dir  string
	n    int
	prev string
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "config.yaml") }

func (c *configMapDir) update(t testing.TB, content string) {
	t.Helper()
	c.n++
	ts := filepath.Join(c.dir, fmt.Sprintf("..2026_11_01_00_00_%02d.%d", c.n, 1000+c.n))
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "config.yaml"), c.path()); err != nil {
			t.Fatal(err)
		}
	}
	if c.prev != "" {
		if err := os.RemoveAll(c.prev); err != nil {
			t.Fatal(err)
		}
	}
	c.prev = ts
}

// waitFor polls cond for up to 20 s: longer than the certificate watcher's poll interval,
// which catches what a file watch misses.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const badConfig = `
defaultAction: block
policies:
  image-tags:
    action: warn
  resource-limits:
    maxLimitRequestRatio: 0.5
`

func TestLoadInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(badConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var engine atomic.Pointer[policies.Engine]
	m, err := NewMetrics(prometheus.NewRegistry(), engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	err = NewConfigReloader(path, &engine, m, quiet(), testClock).Load()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Load() = %v, want a ConfigError", err)
	}
	if len(ce.Errs) < 2 {
		t.Errorf("%d errors, want every problem of the file:\n%v", len(ce.Errs), err)
	}
	for _, want := range []string{path, "image-tags", "defaultAction"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if engine.Load() != nil {
		t.Error("an invalid config was put in force")
	}

	err = NewConfigReloader(filepath.Join(t.TempDir(), "missing.yaml"), &engine, m, quiet(), testClock).Load()
	if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load() of a missing file = %v, want a ConfigError wrapping ErrNotExist", err)
	}
}

func TestConfigBuiltInDefaults(t *testing.T) {
	var engine atomic.Pointer[policies.Engine]
	m, err := NewMetrics(prometheus.NewRegistry(), engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	r := NewConfigReloader("", &engine, m, quiet(), testClock)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	if engine.Load() == nil || engine.Load().Config().DefaultAction != policies.ActionEnforce {
		t.Error("the built-in Loom defaults are not in force")
	}
	if r.Reload() {
		t.Error("the built-in defaults reloaded")
	}
}

// TestConfigReload swaps a ConfigMap-style mount: a good change is applied (and the
// handlers use it at once), a bad one is rejected with all its errors logged while the last
// good config stays in force, and the reload metric counts both.
func TestConfigReload(t *testing.T) {
	cm := &configMapDir{dir: t.TempDir()}
	cm.update(t, "# the Loom defaults\n")

	h := newHarness(t, "")
	var logs logLines
	r := NewConfigReloader(cm.path(), &h.engine, h.metrics, funcr.New(logs.add, funcr.Options{}), testClock).
		WithIntervals(20*time.Millisecond, time.Hour) // no polling: the watch must see the swaps
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() = %v", err)
		}
	}()
	reloads := func(result string) float64 { return testutil.ToFloat64(h.metrics.reloads.WithLabelValues(result)) }
	latest := admissionReview(t, fixture(t, "testdata/latest-image.yaml"), req{})
	if resp := post(t, h.validate, latest); resp.Allowed {
		t.Fatal("latest image admitted under the defaults")
	}
	first := h.engine.Load()

	// A good change.
	cm.update(t, warnImageTag)
	waitFor(t, "the good config", func() bool { return h.engine.Load() != first })
	if resp := post(t, h.validate, latest); !resp.Allowed || len(resp.Warnings) != 1 {
		t.Errorf("after the reload: allowed %v, warnings %q; want a warning", resp.Allowed, resp.Warnings)
	}
	if reloads("success") != 1 || reloads("error") != 0 {
		t.Errorf("reloads success %v error %v, want 1 and 0", reloads("success"), reloads("error"))
	}
	good := h.engine.Load()

	// A bad change.
	cm.update(t, badConfig)
	// The reloader counts the rejection before it logs it: wait for both.
	waitFor(t, "the rejection", func() bool {
		return reloads("error") == 1 && len(logs.matching("rejected the new config")) > 0
	})
	if h.engine.Load() != good {
		t.Error("a bad config replaced the last good one")
	}
	if resp := post(t, h.validate, latest); !resp.Allowed || len(resp.Warnings) != 1 {
		t.Errorf("after a bad reload: allowed %v, warnings %q; the last good config must stay in force", resp.Allowed, resp.Warnings)
	}
	rejected := logs.matching("rejected the new config")
	if len(rejected) != 1 {
		t.Fatalf("%d rejection lines, want 1: %q", len(rejected), logs.lines)
	}
	for _, want := range []string{"defaultAction", "image-tags", "maxLimitRequestRatio"} {
		if !strings.Contains(rejected[0], want) {
			t.Errorf("the rejection line does not list %q: %s", want, rejected[0])
		}
	}

	// Back to good: the defaults again.
	cm.update(t, "defaultAction: enforce\n")
	waitFor(t, "the second good config", func() bool { return h.engine.Load() != good })
	if reloads("success") != 2 || reloads("error") != 1 {
		t.Errorf("reloads success %v error %v, want 2 and 1", reloads("success"), reloads("error"))
	}
	if resp := post(t, h.validate, latest); resp.Allowed {
		t.Error("latest image admitted after going back to enforce")
	}
}

// TestConfigReloadPlainFile edits a plain file in place, as a local run would.
func TestConfigReloadPlainFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "")
	r := NewConfigReloader(path, &h.engine, h.metrics, quiet(), testClock).WithIntervals(20*time.Millisecond, time.Hour)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Start(ctx) }()
	first := h.engine.Load()
	// Let the watch be established; Start rereads the file once it is.
	time.Sleep(50 * time.Millisecond)
	if err := os.WriteFile(path, []byte(auditImageTag), 0o644); err != nil {
		t.Fatal(err)
	}
	// An in-place write may be read half done; the finished file must win.
	waitFor(t, "the edited config", func() bool {
		return h.engine.Load() != first && h.engine.Load().Action("image-tag", "loom") == policies.ActionAudit
	})
}

// TestConfigReloaderSubscribe: a subscriber hears of every config put in force, the first
// load included, and of nothing else (an unchanged file, a rejected config).
func TestConfigReloaderSubscribe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	h := newHarness(t, "")
	r := NewConfigReloader(path, &h.engine, h.metrics, quiet(), testClock)
	first, second := r.Subscribe(), r.Subscribe()
	pending := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	for step, tc := range []struct {
		content string // "" keeps the file
		want    bool
	}{
		{want: true},               // the first load
		{content: "", want: false}, // unchanged
		{content: warnImageTag, want: true},
		{content: badConfig, want: false},   // rejected
		{content: warnImageTag, want: true}, // after a rejection, loaded anew
		{content: auditImageTag, want: true},
	} {
		if step > 0 {
			write(tc.content)
			r.Reload()
		}
		if got := pending(first); got != tc.want {
			t.Errorf("step %d: first subscriber notified %v, want %v", step, got, tc.want)
		}
		if got := pending(second); got != tc.want {
			t.Errorf("step %d: second subscriber notified %v, want %v", step, got, tc.want)
		}
	}
	// Two changes unread make one pending value.
	write(warnImageTag)
	r.Reload()
	write(auditImageTag)
	r.Reload()
	if !pending(first) || pending(first) {
		t.Error("two unread changes: want exactly one pending value")
	}
}
