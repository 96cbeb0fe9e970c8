package audit

import (
	"context"

	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kfake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// TestAuditorEventsSurviveAggregation: the findings of one workload reach the API server as
// Events of their own, through client-go's events.k8s.io recorder, which merges Events of the
// same type, reason, action and regarding object into one series that keeps the first note.
// A Deployment with a pod-disruption-budget and a network-policy finding at the same field
// gets both in one Event; when a later run finds a new violation at another field of a
// Deployment that already has an Event, unchanged itself (its NetworkPolicy is gone), that
// gets an Event of its own.
func TestAuditorEventsSurviveAggregation(t *testing.T) {
	np := netpolFor("apps", "a")
	fc := newFakeCluster(t, objects(baseDeployment(t, "apps", "a", latest, staging), baseDeployment(t, "apps", "b"), np)...)
	cs := kfake.NewClientset()
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAuditor(t, fc, AuditorOptions{Events: b.NewRecorder(scheme, "loomguard.io/audit")})
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The notes of each Deployment's Events must together name these policies.
	waitForNotes(t, ctx, cs, map[string][]string{"a": {"[image-tag] "}, "b": {"[pod-disruption-budget] ", "[network-policy] "}})

	if err := fc.Delete(ctx, np); err != nil {
		t.Fatal(err)
	}
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	waitForNotes(t, ctx, cs, map[string][]string{"a": {"[image-tag] ", "[network-policy] "}})
}

// waitForNotes waits until the notes of the Events regarding each named Deployment of apps
// name each of its policies.
func waitForNotes(t *testing.T, ctx context.Context, cs *kfake.Clientset, want map[string][]string) {
	t.Helper()
	var notes map[string][]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := cs.EventsV1().Events("apps").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		notes = map[string][]string{}
		for _, e := range list.Items {
			notes[e.Regarding.Name] = append(notes[e.Regarding.Name], e.Note)
		}
		missing := 0
		for name, policies := range want {
			all := strings.Join(notes[name], "\n")
			for _, p := range policies {
				if !strings.Contains(all, p) {
					missing++
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Events' notes by Deployment: %q; want them to name %q", notes, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
