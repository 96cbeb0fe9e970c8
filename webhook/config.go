package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// ConfigError is a config that cannot be used, with every problem it has.
type ConfigError struct {
	Path string
	// Errs are the config's problems, each with its field path.
	Errs field.ErrorList
	// Err is set instead of Errs when the file could not be read.
	Err error
}

func (e *ConfigError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("reading config %s: %v", e.Path, e.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config %s (%d errors)", e.Path, len(e.Errs))
	for _, err := range e.Errs {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Messages lists the problems one per entry, for structured logs.
func (e *ConfigError) Messages() []string {
	if e.Err != nil {
		return []string{e.Err.Error()}
	}
	out := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		out[i] = err.Error()
	}
	return out
}

// CompileConfig decodes a config file's content and compiles its engine. path only names
// the file in errors.
func CompileConfig(path string, data []byte, now func() time.Time) (*policies.Engine, error) {
	cfg, errs := policies.LoadConfig(data)
	if len(errs) > 0 {
		return nil, &ConfigError{Path: path, Errs: errs}
	}
	e, err := policies.NewEngine(cfg, now)
	if err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	return e, nil
}

// ConfigReloader loads the config file into the engine pointer the handlers read, and
// reloads it when the file changes: it watches the file's directory, because a mounted
// ConfigMap is replaced by swapping the ..data symlink, not by writing the file. A new
// config that does not load is logged with all its errors and counted, and the last good
// engine stays in force. It is a controller-runtime Runnable.
type ConfigReloader struct {
	path    string
	engine  *atomic.Pointer[policies.Engine]
	metrics *Metrics
	log     logr.Logger
	now     func() time.Time

	// debounce gathers the burst of events of one update; poll rereads the file in case
	// an event was missed.
	debounce time.Duration
	poll     time.Duration

	mu      sync.Mutex
	last    []byte // content of the last file read, good or bad
	lastErr string // last read error, so that a missing file is reported once
	// changed are the channels of Subscribe, each told of every new engine in force.
	changed []chan struct{}
}

// NewConfigReloader returns a reloader for the config file at path; an empty path means the
// built-in Loom defaults, which never change. now is the engine's clock (nil: time.Now).
func NewConfigReloader(path string, engine *atomic.Pointer[policies.Engine], m *Metrics, log logr.Logger, now func() time.Time) *ConfigReloader {
	if now == nil {
		now = time.Now
	}
	return &ConfigReloader{
		path: path, engine: engine, metrics: m, log: log, now: now,
		debounce: 100 * time.Millisecond,
		poll:     30 * time.Second,
	}
}

// WithIntervals sets the debounce delay and the poll interval (tests shorten them).
func (c *ConfigReloader) WithIntervals(debounce, poll time.Duration) *ConfigReloader {
	c.debounce, c.poll = debounce, poll
	return c
}

// Load loads the config for the first time. Unlike a reload, a config that does not load is
// an error: loomguard does not start without a good config.
func (c *ConfigReloader) Load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var data []byte
	if c.path != "" {
		var err error
		if data, err = os.ReadFile(c.path); err != nil {
			return &ConfigError{Path: c.path, Err: err}
		}
	}
	e, err := CompileConfig(c.name(), data, c.now)
	if err != nil {
		return err
	}
	c.last = data
	c.store(e)
	c.log.Info("config loaded", "path", c.name(), "digest", ConfigDigest(e.Config()), "exceptions", len(e.Exceptions()))
	return nil
}

// Subscribe returns a channel that receives a value after every change of the engine in
// force (the first load and each reload that loads; never for a rejected config). It
// holds one value: a reader that falls behind sees a burst of changes as one, and reads
// the engine in force itself.
func (c *ConfigReloader) Subscribe() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	c.changed = append(c.changed, ch)
	return ch
}

// store puts e in force and tells the subscribers; c.mu is held.
func (c *ConfigReloader) store(e *policies.Engine) {
	c.engine.Store(e)
	for _, ch := range c.changed {
		select {
		case ch <- struct{}{}:
		default: // a change is pending already
		}
	}
}

// ConfigDigest identifies a config by content: the first 12 hex digits of the SHA-256 of its
// JSON encoding (map keys sorted), the same on every replica. The reloader's and the
// match-condition syncer's log lines carry it.
func ConfigDigest(cfg *policies.Config) string {
	data, err := json.Marshal(cfg)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

func (c *ConfigReloader) name() string {
	if c.path == "" {
		return "(built-in Loom defaults)"
	}
	return c.path
}

// Reload rereads the file and swaps the engine when its content changed and loads; it
// reports whether a new engine is in force.
func (c *ConfigReloader) Reload() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" {
		return false
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		if err.Error() != c.lastErr {
			c.lastErr = err.Error()
			c.last = nil
			c.metrics.reload(false)
			c.log.Error(err, "reading the config failed; keeping the last good config", "path", c.path)
		}
		return false
	}
	c.lastErr = ""
	if c.last != nil && bytes.Equal(data, c.last) {
		return false
	}
	c.last = data
	e, err := CompileConfig(c.path, data, c.now)
	if err != nil {
		c.metrics.reload(false)
		var msgs []string
		if ce := (*ConfigError)(nil); errors.As(err, &ce) {
			msgs = ce.Messages()
		}
		c.log.Error(err, "rejected the new config; keeping the last good config", "path", c.path, "errors", msgs)
		return false
	}
	c.store(e)
	c.metrics.reload(true)
	c.log.Info("config reloaded", "path", c.path, "digest", ConfigDigest(e.Config()), "exceptions", len(e.Exceptions()))
	return true
}

// Start watches the config file until ctx is done.
func (c *ConfigReloader) Start(ctx context.Context) error {
	if c.path == "" {
		<-ctx.Done()
		return nil
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching config: %w", err)
	}
	defer watcher.Close()
	dir := filepath.Dir(c.path)
	if err := watcher.Add(dir); err != nil {
		return fmt.Errorf("watching config directory %s: %w", dir, err)
	}
	c.log.V(1).Info("watching config", "path", c.path, "directory", dir)
	// A change between Load and the watch would go unseen.
	c.Reload()

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(c.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return nil
			}
			c.log.V(1).Info("config directory event", "event", ev.String())
			debounce.Reset(c.debounce)
		case err, ok := <-watcher.Errors:
			if !ok {
				return nil
			}
			c.log.Error(err, "config watch error")
		case <-debounce.C:
			c.Reload()
		case <-poll.C:
			c.Reload()
		}
	}
}

// NeedLeaderElection is false: every replica serves admission with the same config.
func (c *ConfigReloader) NeedLeaderElection() bool { return false }
