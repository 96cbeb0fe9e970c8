package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loomguard/loomguard/mutation"
	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
)

// staticPatchSetup is the setup whose only admission is staticPatch: the least a mutating
// webhook that applies loomguard's fixes to the fix Pod can cost the API server.
const staticPatchSetup = "static-patch"

// staticPatchName names its MutatingWebhookConfiguration and its webhook.
const staticPatchName = "static-patch.bench.loomguard.io"

// fixedAnnotationJSON is how the fixed annotation's key appears in an encoded object.
const fixedAnnotationJSON = `"` + fixedAnnotation + `":`

// maxStaticReviewBytes bounds the review bodies staticPatch reads (the API server's own
// request limit is 3 MiB; the bench Pods are a few KiB).
const maxStaticReviewBytes = 1 << 20

// staticPatch is a mutating webhook that does no work: it answers every review with the
// JSON patch that loomguard's engine computed once for the fix Pod, reading nothing of the
// review but its uid. It serves HTTPS with HTTP/2 on a loopback port, as
// loomguard does, so that what the API server spends on it (encoding the review, the
// connection, applying and decoding the patch, its reinvocation round) is what it spends on
// any webhook that returns the same patch, and the throughput of the fix workload in this
// setup is the ceiling of a patching webhook on it. Its own CPU (Go's TLS and HTTP/2 server
// reading each review, and a constant answer) is the benchmark process's, which the CPU
// columns leave out; it competes for the same cores as loomguard's would.
type staticPatch struct {
	caPEM   []byte // the CA the API server trusts for it
	url     string // https://127.0.0.1:<port>/mutate
	reviews atomic.Int64
	srv     *http.Server
	patch   atomic.Pointer[[]byte] // the JSON patch (RFC 6902), computed from the first review
}

// startStaticPatch serves the webhook on a loopback port until ctx ends, with loomguard's
// serving certificate (the API server trusts its CA, LoomguardCAPEM).
func startStaticPatch(ctx context.Context, c *cluster.Cluster) (*staticPatch, error) {
	cert, err := c.LoomguardServingCertificate()
	if err != nil {
		return nil, fmt.Errorf("the static-patch webhook's certificate: %w", err)
	}
	caPEM := c.LoomguardCAPEM()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the static-patch webhook: %w", err)
	}
	s := &staticPatch{caPEM: caPEM, url: fmt.Sprintf("https://%s/mutate", ln.Addr())}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	go func() {
		<-ctx.Done()
		_ = s.srv.Close()
	}()
	return s, nil
}

// fixPatch is the JSON patch that loomguard's mutating webhook, with its default config,
// returns for raw, a Pod as the API server encodes it.
func fixPatch(raw []byte) ([]byte, error) {
	e, err := policies.NewEngine(policies.DefaultConfig(), nil)
	if err != nil {
		return nil, err
	}
	obj, err := policies.NewDecoder().Decode(raw, corev1.SchemeGroupVersion.WithKind("Pod"), false)
	if err != nil {
		return nil, fmt.Errorf("decoding the Pod: %w", err)
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return nil, errors.New("a Pod is not a workload")
	}
	r, err := mutation.Apply(e, w, raw, namespace)
	if err != nil {
		return nil, fmt.Errorf("computing the Pod's patch: %w", err)
	}
	if len(r.Patch) == 0 {
		return nil, errors.New("loomguard fixes nothing in the Pod")
	}
	return mutation.EncodePatch(r.Patch)
}

// podJSON encodes pod as the API server does (encoding/json of the typed object).
func podJSON(pod *corev1.Pod) ([]byte, error) {
	p := pod.DeepCopy()
	p.APIVersion, p.Kind = "v1", "Pod"
	if p.Name == "" {
		p.Name = "bench"
	}
	p.Namespace = namespace
	return json.Marshal(p)
}

// serveHTTP answers a review with the patch and the review's uid. Only the fix Pods are sent
// to it (its objectSelector), all of one shape: the patch is loomguard's for the first of
// them, computed then (in the setup's in-force check). A body it cannot read gets a 400.
func (s *staticPatch) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxStaticReviewBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	patch, err := s.patchFor(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	uid, ok := reviewUID(body)
	if !ok {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "no request.uid in the review", http.StatusBadRequest)
			return
		}
		uid = review.Request.UID
	}
	s.reviews.Add(1)
	resp := &admissionv1.AdmissionResponse{UID: uid, Allowed: true}
	if patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// patchFor returns the patch for the review in body: nil for an object that already has
// loomguard's fixed annotation (fixed by another setup that the API server has not yet
// dropped), else the patch computed from the first such object.
func (s *staticPatch) patchFor(body []byte) ([]byte, error) {
	if p := s.patch.Load(); p != nil && !bytes.Contains(body, []byte(fixedAnnotationJSON)) {
		return *p, nil
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		return nil, fmt.Errorf("decoding the review: %v", err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("decoding the review's Pod: %w", err)
	}
	if _, ok := pod.Annotations[fixedAnnotation]; ok {
		return nil, nil
	}
	if p := s.patch.Load(); p != nil {
		return *p, nil
	}
	p, err := fixPatch(review.Request.Object.Raw)
	if err != nil {
		return nil, err
	}
	s.patch.CompareAndSwap(nil, &p)
	return *s.patch.Load(), nil
}

// reviewUID finds request.uid in an AdmissionReview without decoding the object, where
// kube-apiserver puts it: it encodes the request's fields in the order of
// admissionv1.AdmissionRequest, uid first. False means the caller decodes the review.
func reviewUID(body []byte) (types.UID, bool) {
	const key = `"request":{"uid":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 || j > 64 {
		return "", false
	}
	return types.UID(rest[:j]), true
}

// register creates (or replaces) the MutatingWebhookConfiguration that sends the creates of
// Pods labelled as the fix Pod in the bench namespace to s, with loomguard's mutating webhook's failure and
// reinvocation policies and timeout.
func (s *staticPatch) register(ctx context.Context, b *bench) error {
	ignore, ifNeeded, none := admissionregistrationv1.Ignore, admissionregistrationv1.IfNeededReinvocationPolicy, admissionregistrationv1.SideEffectClassNone
	timeout := int32(3)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: staticPatchName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    staticPatchName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &s.url, CABundle: s.caPEM},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &ignore,
			ReinvocationPolicy:      &ifNeeded,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"app": b.fix.Labels["app"]}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
	mw := b.c.Clientset().AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := mw.Delete(ctx, staticPatchName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("replacing MutatingWebhookConfiguration %s: %w", staticPatchName, err)
	}
	if _, err := mw.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", staticPatchName, err)
	}
	return nil
}

// unregisterStaticPatch deletes the static-patch webhook's configuration, if any.
func (b *bench) unregisterStaticPatch(ctx context.Context) error {
	err := b.c.Clientset().AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, staticPatchName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting MutatingWebhookConfiguration %s: %w", staticPatchName, err)
	}
	return nil
}
