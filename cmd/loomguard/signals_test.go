//go:build !loomguard_cli

package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loomguard/loomguard/webhook"
)

// inFlight starts a review on a raw TLS connection and sends half its body: the review is
// in flight until finish sends the rest and reads the answer.
type inFlight struct {
	t    *testing.T
	conn *tls.Conn
	body []byte
}

func (e serveEndpoints) startReview(t *testing.T) *inFlight {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", e.port), &tls.Config{RootCAs: e.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second)) // a bound for the test, not an assertion
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:  "b1f0c3e4-0000-4000-8000-000000000002",
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name: "web", Namespace: "loom", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: []byte(insecurePod)},
		},
	}
	body, _ := json.Marshal(ar)
	fmt.Fprintf(conn, "POST %s?timeout=30s HTTP/1.1\r\nHost: loomguard\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		webhook.ValidatePath, len(body), body[:len(body)/2])
	return &inFlight{t: t, conn: conn, body: body[len(body)/2:]}
}

// finish sends the rest of the body and returns the answer, or the error reading it.
func (f *inFlight) finish() (*admissionv1.AdmissionResponse, error) {
	if _, err := f.conn.Write(f.body); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(f.conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
		return nil, err
	}
	return ar.Response, nil
}

// TestServeSignals drives the real binary, the full build and the CLI build (which
// execve's the full build beside it): SIGHUP rereads the config and leaves a review in
// flight to finish; SIGTERM with a review that outlasts --shutdown-timeout cuts it off and
// exits 1, as the help says. Its log format comes from LOOMGUARD_LOG_FORMAT, which must
// reach serve through either build.
func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cli, full := buildBoth(t)
	for _, tt := range []struct{ name, bin string }{{"full build", full}, {"CLI build", cli}} {
		t.Run(tt.name, func(t *testing.T) { testServeSignals(t, tt.bin) })
	}
}

func testServeSignals(t *testing.T, bin string) {
	noCluster(t)
	e := newServeEndpoints(t)
	var stderr syncBuffer
	cmd := exec.Command(bin, append([]string{"serve"}, e.args("--shutdown-timeout", "1s")...)...)
	cmd.Env = append(os.Environ(), "LOOMGUARD_LOG_FORMAT=console")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	e.waitReady(t, exited, &stderr)

	review := e.startReview(t)
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			select {
			case code := <-exited:
				t.Fatalf("serve exited with %d waiting for %q; stderr:\n%s", code, what, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The server has read the review's headers: it is in flight (reading its body, which
	// must arrive within 3 s; the test sends the rest well before).
	waitInFlight := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(e.metricsText(t), "\nloomguard_admission_in_flight 1\n") {
			if time.Now().After(deadline) {
				t.Fatalf("the review never got in flight:\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitInFlight()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("SIGHUP: rereading the config file")
	resp, err := review.finish()
	if err != nil || resp.Allowed || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("the review in flight across SIGHUP got %+v (%v), want its denial", resp, err)
	}
	if resp := e.validate(t); resp.Allowed {
		t.Error("after SIGHUP, the insecure Pod was admitted")
	}

	stuck := e.startReview(t)
	waitInFlight()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != exitServeFailed {
			t.Errorf("exit %d after SIGTERM with a review outlasting --shutdown-timeout, want %d; stderr:\n%s", code, exitServeFailed, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if strings.HasPrefix(stderr.String(), "{") {
		t.Errorf("the log is JSON, not LOOMGUARD_LOG_FORMAT=console:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "cut off") {
		t.Errorf("the log does not say reviews were cut off:\n%s", stderr.String())
	}
	if resp, err := stuck.finish(); err == nil {
		t.Errorf("the cut-off review got an answer: %+v", resp)
	}
}
