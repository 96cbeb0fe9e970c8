package audit

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// syntheticCluster is a client.Reader that serves n Deployments (and nothing else), page
// by page, built on the fly from the base Loom Deployment: the audit's own memory and
// time, without a fake cluster holding every object.
type syntheticCluster struct {
	client.Reader
	base *appsv1.Deployment
	n    int
}

func (s *syntheticCluster) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	dl, ok := list.(*appsv1.DeploymentList)
	if !ok {
		return nil // every other kind: empty
	}
	start := 0
	if lo.Continue != "" {
		start, _ = strconv.Atoi(lo.Continue)
	}
	end := min(start+int(lo.Limit), s.n)
	dl.Items = make([]appsv1.Deployment, 0, end-start)
	for i := start; i < end; i++ {
		d := s.base.DeepCopy()
		d.Namespace = fmt.Sprintf("ns-%03d", i/200)
		d.Name = fmt.Sprintf("w%05d", i)
		d.UID = types.UID(d.Namespace + "/" + d.Name)
		if i%10 == 3 {
			d.Spec.Template.Spec.Containers[0].Image = "loom:latest"
			d.Spec.Template.Spec.Containers[0].LivenessProbe = nil
		}
		dl.Items = append(dl.Items, *d)
	}
	if end < s.n {
		dl.Continue = strconv.Itoa(end)
	}
	return nil
}

// BenchmarkRun10k audits 10,000 Deployments (one in ten with violations, none covered by
// a NetworkPolicy), 500 per page, and reports the live heap the result holds.
func BenchmarkRun10k(b *testing.B) {
	src := &syntheticCluster{base: baseDeployment(b, "", ""), n: 10000}
	e := testEngine(b, "", testClock)
	b.ReportAllocs()
	var res *Result
	for b.Loop() {
		var err error
		if res, err = Run(context.Background(), Options{Reader: src, Engine: e}); err != nil {
			b.Fatal(err)
		}
	}
	if len(res.Workloads) != src.n {
		b.Fatalf("%d workloads", len(res.Workloads))
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "MiB-live-heap")
	runtime.KeepAlive(res)
}
