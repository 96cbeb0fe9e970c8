package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Settling before each measured run (settle).
const (
	settleWindow = time.Second
	settleMax    = 30 * time.Second
)

// settle waits, before a measured run, until the machine is quiet: fewer than
// b.o.settleCores cores busy over one settleWindow, counting every process (/proc/stat),
// so that load present when a run starts (what the last run left behind: a deleted
// rollout's 2,000 Pods, the Go runtimes' garbage collection; or other work on the shared
// machine) is not measured with it. It gives up after settleMax; the run goes on. It
// returns how long it waited, whether the machine settled, and how busy the last window
// was, in cores.
func (b *bench) settle(ctx context.Context) (waited time.Duration, settled bool, cores float64, err error) {
	if b.o.settleCores <= 0 {
		return 0, true, 0, nil
	}
	start := time.Now()
	prev, err := machineBusy()
	if err != nil {
		return 0, false, 0, fmt.Errorf("settling: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false, 0, ctx.Err()
		case <-time.After(settleWindow):
		}
		now, err := machineBusy()
		if err != nil {
			return 0, false, 0, fmt.Errorf("settling: %w", err)
		}
		cores = busyCores(prev, now, settleWindow)
		prev = now
		waited = time.Since(start)
		if cores < b.o.settleCores {
			return waited, true, cores, nil
		}
		if waited >= settleMax {
			return waited, false, cores, nil
		}
	}
}

// busyCores is the CPU time spent between two readings of machineBusy over the wall time
// between them, in cores.
func busyCores(before, after, wall time.Duration) float64 {
	if wall <= 0 || after < before {
		return 0
	}
	return float64(after-before) / float64(wall)
}

// machineBusy is the CPU time all CPUs of the machine have spent busy since boot.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	t, err := parseProcStat(string(data))
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return t, nil
}

// parseProcStat returns the busy time of the "cpu" line of /proc/stat, the sum over all
// CPUs: user, nice, system, irq, softirq and steal (proc(5): fields 1–3 and 6–8 of the
// line, in USER_HZ ticks; idle and iowait, fields 4 and 5, are not busy; guest time is
// already counted in user).
func parseProcStat(s string) (time.Duration, error) {
	for line := range strings.Lines(s) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		if len(fields) < 9 {
			return 0, errors.New(`too few fields on the "cpu" line`)
		}
		var ticks int64
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			n, err := strconv.ParseInt(fields[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf(`field %d of the "cpu" line: %w`, i, err)
			}
			ticks += n
		}
		return time.Duration(ticks) * time.Second / clockTicks, nil
	}
	return 0, errors.New(`no "cpu" line`)
}
