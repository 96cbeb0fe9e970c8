package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime ...
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %s, want %s (325 ticks of 10 ms)", got, want)
	}
	for _, bad := range []string{"4242 kube S 1", "4242 (x) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime(self): %v", err)
	}
}

func TestPodCreateLatencies(t *testing.T) {
	const rs = "system:serviceaccount:kube-system:replicaset-controller"
	log := `{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.012000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.002000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"admin"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"other"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench","subresource":"binding"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"replicasets","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
`
	path := filepath.Join(t.TempDir(), "audit.log")
	skipped := `{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T11:00:00.000000Z","stageTimestamp":"2026-11-30T11:00:09.000000Z"}` + "\n"
	if err := os.WriteFile(path, []byte(skipped+log), 0o600); err != nil {
		t.Fatal(err)
	}
	lat, failed, err := podCreateLatencies(path, int64(len(skipped)), "bench", rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 1 || lat[0] != 12*time.Millisecond || failed != 1 {
		t.Errorf("podCreateLatencies = %v, %d failed; want [12ms], 1 failed (the line before the offset, other users, namespaces, subresources and resources not counted)", lat, failed)
	}
}

func TestDecodeVAP(t *testing.T) {
	p, b, err := decodeVAP()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Validations) != 9 || b.Spec.PolicyName != p.Name {
		t.Errorf("policy with %d validations, binding of %q; want 9, %q", len(p.Spec.Validations), b.Spec.PolicyName, p.Name)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
