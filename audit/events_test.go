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
// A Deployment with an image-tag and a network-policy finding gets both notes.
func TestAuditorEventsSurviveAggregation(t *testing.T) {
	fc := newFakeCluster(t, objects(baseDeployment(t, "apps", "a", latest, staging))...)
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
	want := []string{"[image-tag] ", "[network-policy] "}
	var notes []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := cs.EventsV1().Events("apps").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		notes = notes[:0]
		for _, e := range list.Items {
			notes = append(notes, e.Note)
		}
		missing := 0
		for _, w := range want {
			found := false
			for _, n := range notes {
				found = found || strings.HasPrefix(n, w)
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Events of Deployment apps/a hold the notes %q; want one starting with each of %q", notes, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
