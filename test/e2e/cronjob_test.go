package e2e

import (
	"context"
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCronJobChildrenAdmitted: a compliant CronJob whose jobTemplate carries no labels of
// its own (they are on the CronJob and on the pod template) is admitted, and so are the Job
// made from it (controlled by the CronJob; whatever labels it has come from the pod
// template) and the Job's Pod, which the job controller creates. `kubectl create job
// --from=cronjob/...` stands in for the cronjob controller, which would only act on the
// schedule.
func TestCronJobChildrenAdmitted(t *testing.T) {
	s := newScenario(t, "e2e-cronjob")
	mustSucceed(t, s.apply(compliantCronJob("nightly")))

	r := s.kubectl("create", "job", "nightly-manual", "--from=cronjob/nightly")
	mustSucceed(t, r)
	if w := warnings(r); len(w) > 0 {
		t.Errorf("the Job of a compliant CronJob gets no warning, got %q", w)
	}
	job, err := s.cs.BatchV1().Jobs(s.ns).Get(t.Context(), "nightly-manual", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.Kind != "CronJob" || ref.Name != "nightly" {
		t.Fatalf("the Job is not controlled by CronJob nightly: %+v", job.OwnerReferences)
	}
	eventually(t, "the Pod of Job nightly-manual", func(ctx context.Context) error {
		pods, err := s.podsOf(ctx, s.ns, job.UID)
		if err != nil {
			return err
		}
		if len(pods) != 1 {
			return fmt.Errorf("%d Pods", len(pods))
		}
		return nil
	})
}

// compliantCronJob is a CronJob that passes every default policy. Its jobTemplate has no
// metadata: the Jobs it makes carry only their pod template's labels.
func compliantCronJob(name string) *batchv1.CronJob {
	d := compliantDeployment(name, 1)
	tmpl := d.Spec.Template
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	ctr := &tmpl.Spec.Containers[0]
	ctr.Ports, ctr.LivenessProbe, ctr.ReadinessProbe = nil, nil, nil
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: d.ObjectMeta,
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{
				Spec: batchv1.JobSpec{Template: tmpl},
			},
		},
	}
}
