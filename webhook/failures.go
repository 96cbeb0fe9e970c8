package webhook

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// failureLogInterval is how often a reviews answered with an error are logged, per reason:
// a flood of bad requests costs one line a second, each saying how many it stands for.
const failureLogInterval = time.Second

// failures counts and logs the reviews answered with an error. Every one is counted; the
// log lines are rate-limited per reason, so that a client sending garbage cannot flood the
// log (and the node's disk) with it.
type failures struct {
	metrics *Metrics
	log     logr.Logger
	now     func() time.Time

	mu         sync.Mutex
	last       map[string]time.Time // reason → when it was last logged
	suppressed map[string]int       // reason → failures not logged since
}

func newFailures(m *Metrics, log logr.Logger) *failures {
	return &failures{metrics: m, log: log, now: time.Now, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// record counts a review that was answered with an error before it could be read as a
// request (its operation and kind are unknown), and logs it.
func (f *failures) record(webhook, reason string, elapsed time.Duration, kv ...any) {
	f.metrics.observeRequest(webhook, "unknown", kindOther, decisionError, reason, false, elapsed.Seconds())
	f.logf(reason, "admission review answered with an error", append([]any{"webhook", webhook}, kv...)...)
}

// logf logs a failure of the given reason unless one was logged less than
// failureLogInterval ago; the next line logged says how many were left out.
func (f *failures) logf(reason, msg string, kv ...any) {
	f.mu.Lock()
	now := f.now()
	if last, ok := f.last[reason]; ok && now.Sub(last) < failureLogInterval {
		f.suppressed[reason]++
		f.mu.Unlock()
		return
	}
	f.last[reason] = now
	n := f.suppressed[reason]
	f.suppressed[reason] = 0
	f.mu.Unlock()
	kv = append(kv, "reason", reason)
	if n > 0 {
		kv = append(kv, "suppressed", n)
	}
	f.log.Info(msg, kv...)
}
