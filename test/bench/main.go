// Command bench is a bounded loopback load generator for `loomguard serve`: it sends
// AdmissionReview v1 requests for the base Loom Deployment over TLS keep-alive connections
// and reports reviews per second, latency percentiles and the server's resident memory.
// Closed loop (the default), -c connections send back to back: throughput, with latency
// bound by Little's law (c / throughput). Open loop (-rate), reviews are due at a fixed
// rate: latency at that load.
//
// Against a server that is already running (-pid to read its memory):
//
//	go run ./test/bench -addr https://127.0.0.1:9443 -ca certs/tls.crt -pid $(pgrep -n loomguard) -n 20000 -c 50
//
// Or let it start the binary itself, with a throwaway certificate, on free loopback ports:
//
//	make build && go run ./test/bench -spawn bin/loomguard -n 20000 -c 50
//
// It only ever talks to loopback addresses, sends at most -n reviews and stops after
// -duration-cap whatever happens.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

type options struct {
	addr        string
	paths       string
	ca          string
	fixture     string
	namespace   string
	n           int
	c           int
	warmup      int
	durationCap time.Duration
	pid         int
	spawn       string
	rate        float64
	probe       string
	hold        time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "https://127.0.0.1:9443", "base URL of the webhook server (loopback only)")
	flag.StringVar(&o.paths, "paths", "/validate", "comma-separated endpoints, used in turn (e.g. /validate,/mutate)")
	flag.StringVar(&o.ca, "ca", "", "PEM file of the CA (or self-signed certificate) to trust; empty skips verification")
	flag.StringVar(&o.fixture, "fixture", "policies/testdata/base/deployment.yaml", "workload sent in every review")
	flag.StringVar(&o.namespace, "namespace", "loom", "namespace of the reviews")
	flag.IntVar(&o.n, "n", 20000, "reviews to send (after the warm-up)")
	flag.IntVar(&o.c, "c", 50, "concurrent keep-alive connections")
	flag.IntVar(&o.warmup, "warmup", 2000, "reviews sent before measuring")
	flag.DurationVar(&o.durationCap, "duration-cap", 30*time.Second, "stop after this long, whatever -n says")
	flag.IntVar(&o.pid, "pid", 0, "process ID of the server, to report its resident memory (VmRSS)")
	flag.StringVar(&o.spawn, "spawn", "", "start this loomguard binary with a throwaway certificate and stop it afterwards")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: send this many reviews per second in total and time each from its scheduled start (0: closed loop, as fast as the connections go)")
	flag.StringVar(&o.probe, "probe", "", `instead of load, a hostile probe measuring the server's peak RSS: "declared" (-c connections each declaring a 7 MiB body and sending 1 byte, held for -hold) or "bigpods" (-n /mutate reviews of a 3 MiB Pod of 49,932 containers lacking every security setting, -c at once)`)
	flag.DurationVar(&o.hold, "hold", 5*time.Second, "how long -probe declared holds its connections open")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.n <= 0 || o.c <= 0 || o.n > 10_000_000 || o.c > 1000 {
		return errors.New("-n must be in 1..10000000 and -c in 1..1000")
	}
	deadline := time.Now().Add(o.durationCap)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var pool *x509.CertPool
	if o.spawn != "" {
		srv, err := spawn(ctx, o.spawn)
		if err != nil {
			return err
		}
		defer srv.stop()
		o.addr, o.pid, pool = srv.addr, srv.cmd.Process.Pid, srv.pool
	} else if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no certificate", o.ca)
		}
	}
	if err := loopbackOnly(o.addr); err != nil {
		return err
	}
	target, err := url.Parse(o.addr)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{RootCAs: pool, InsecureSkipVerify: pool == nil, NextProtos: []string{"http/1.1"}} //nolint:gosec // loopback benchmark
	if o.probe != "" {
		return probe(ctx, o, &generator{addr: target.Host, tls: tlsConfig, c: o.c})
	}
	body, err := reviewBody(o.fixture, o.namespace)
	if err != nil {
		return err
	}

	paths := strings.Split(o.paths, ",")
	requests := make([][]byte, len(paths))
	for i, p := range paths {
		requests[i] = rawRequest(target.Host, p, body)
	}
	g := &generator{addr: target.Host, tls: tlsConfig, requests: requests, c: o.c}

	idle := rss(o.pid)
	if _, _, err := g.load(ctx, o.warmup, 0); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	afterWarmup := rss(o.pid)

	var peak atomic.Int64
	stopSampling := sampleRSS(o.pid, &peak)
	cpuBefore := cpuTime(o.pid)
	start := time.Now()
	latencies, failures, err := g.load(ctx, o.n, o.rate)
	elapsed := time.Since(start)
	cpuUsed := cpuTime(o.pid) - cpuBefore
	stopSampling()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	mode := "closed loop"
	if o.rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f reviews/s", o.rate)
	}
	fmt.Printf("target        %s%s (HTTP/1.1 keep-alive over TLS, %s)\n", o.addr, o.paths, mode)
	fmt.Printf("machine       %d CPUs, GOMAXPROCS %d (load generator and server share them)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("reviews       %d in %s with %d connections (%d warm-up reviews before)\n", len(latencies), elapsed.Round(time.Millisecond), o.c, o.warmup)
	if errors.Is(err, context.DeadlineExceeded) || len(latencies) < o.n {
		fmt.Printf("              stopped by -duration-cap %s before -n %d\n", o.durationCap, o.n)
	}
	fmt.Printf("failures      %d\n", failures)
	fmt.Printf("throughput    %.0f reviews/s\n", float64(len(latencies))/elapsed.Seconds())
	fmt.Printf("latency       p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		us(pct(0.50)), us(pct(0.90)), us(pct(0.99)), us(pct(0.999)), us(pct(1)))
	if o.pid > 0 && len(latencies) > 0 {
		fmt.Printf("server CPU    %.0fµs per review (%.2f cores busy)\n",
			float64(cpuUsed)/float64(time.Microsecond)/float64(len(latencies)), cpuUsed.Seconds()/elapsed.Seconds())
	}
	if o.pid > 0 {
		fmt.Printf("server RSS    idle %s  after warm-up %s  peak under load %s  after %s\n",
			mib(idle), mib(afterWarmup), mib(peak.Load()), mib(rss(o.pid)))
	}
	if failures > 0 {
		return fmt.Errorf("%d reviews failed", failures)
	}
	return nil
}

// generator is a lean HTTP/1.1 keep-alive client: each connection writes prepared request
// bytes and reads the response with net/http's parser. It keeps the load generator's own
// CPU use low, since it shares the machine with the server.
type generator struct {
	addr     string
	tls      *tls.Config
	requests [][]byte
	c        int
}

// load sends n reviews over c connections and returns each one's latency. With rate > 0,
// review i is due at start + i/rate and its latency counts from then, so a slow server
// cannot hide its queueing (no coordinated omission).
func (g *generator) load(ctx context.Context, n int, rate float64) ([]time.Duration, int, error) {
	var (
		next     atomic.Int64
		failures atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      = make([]time.Duration, 0, n)
		start    = time.Now()
	)
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	for w := range g.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/g.c+1)
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			var c *conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				due := time.Now()
				if rate > 0 {
					due = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				if c == nil {
					var err error
					if c, err = g.dial(ctx); err != nil {
						fail(err)
						continue
					}
				}
				if err := c.roundTrip(g.requests[(int(i)+w)%len(g.requests)]); err != nil {
					c.Close()
					c = nil
					if ctx.Err() == nil {
						fail(err)
					}
					continue
				}
				mine = append(mine, time.Since(due))
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		fmt.Fprintln(os.Stderr, "first failure:", *p)
	}
	return all, int(failures.Load()), ctx.Err()
}

type conn struct {
	*tls.Conn
	br   *bufio.Reader
	body bytes.Buffer
}

func (g *generator) dial(ctx context.Context) (*conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: g.tls}
	nc, err := d.DialContext(ctx, "tcp", g.addr)
	if err != nil {
		return nil, err
	}
	tc := nc.(*tls.Conn)
	return &conn{Conn: tc, br: bufio.NewReaderSize(tc, 16<<10)}, nil
}

// roundTrip writes one request and reads its response, which must admit the review.
func (c *conn) roundTrip(req []byte) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, c.body.Bytes())
	}
	if !bytes.Contains(c.body.Bytes(), []byte(`"allowed":true`)) {
		return fmt.Errorf("not allowed: %.300s", c.body.Bytes())
	}
	if resp.Close {
		return errors.New("the server closed the connection")
	}
	return nil
}

// rawRequest is the HTTP/1.1 request for one review.
func rawRequest(host, path string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n", path, host, len(body))
	b.Write(body)
	return b.Bytes()
}

// reviewBody wraps the fixture into an AdmissionReview v1 CREATE request.
func reviewBody(path, namespace string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the fixture (run from the repository root or set -fixture): %w", err)
	}
	obj, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(obj, &meta); err != nil {
		return nil, err
	}
	group, version, found := strings.Cut(meta.APIVersion, "/")
	if !found {
		group, version = "", meta.APIVersion
	}
	kind := map[string]any{"group": group, "version": version, "kind": meta.Kind}
	resource := map[string]any{"group": group, "version": version, "resource": strings.ToLower(meta.Kind) + "s"}
	return json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid": "3b5c1f0e-7a2d-4c8e-9f10-000000000001", "kind": kind, "resource": resource,
			"requestKind": kind, "requestResource": resource,
			"name": meta.Metadata.Name, "namespace": namespace, "operation": "CREATE",
			"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"},
			"object":   json.RawMessage(obj), "oldObject": nil, "dryRun": false,
			"options": map[string]any{"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
		},
	})
}

func loopbackOnly(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address; bench only drives a local server", addr)
}

// rss returns a process's resident set size in bytes from /proc/<pid>/status, or 0.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime returns the user plus system CPU time a process has used, from /proc/<pid>/stat.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(fields[12], 10, 64) // field 15
	const ticks = 100                                // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// sampleRSS records the peak resident memory every 50 ms until the returned func is called.
func sampleRSS(pid int, peak *atomic.Int64) func() {
	if pid <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(pid); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// server is a loomguard binary started by -spawn.
type server struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	pool *x509.CertPool
}

func spawn(ctx context.Context, bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "loomguard-bench-")
	if err != nil {
		return nil, err
	}
	pool, err := writeCert(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "serve",
		"--cert-dir", dir,
		"--bind-address", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--metrics-secure=false",
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(ports[2]),
		"--log-level", "error")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{cmd: cmd, dir: dir, addr: "https://127.0.0.1:" + strconv.Itoa(ports[0]), pool: pool}
	ready := "http://127.0.0.1:" + strconv.Itoa(ports[2]) + "/readyz"
	for {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("%s did not become ready; see its log in %s", bin, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("spawned       %s serve (pid %d) on %s\n", bin, cmd.Process.Pid, s.addr)
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
		fmt.Printf("stopped       exit code %d\n", s.cmd.ProcessState.ExitCode())
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeCert writes a self-signed certificate for 127.0.0.1 as tls.crt and tls.key.
func writeCert(dir string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "loomguard-bench"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}

// probe runs one of the hostile probes of issue 11 and reports the server's peak RSS.
func probe(ctx context.Context, o options, g *generator) error {
	idle := rss(o.pid)
	var peak atomic.Int64
	stopSampling := sampleRSS(o.pid, &peak)
	var sent, answered atomic.Int64
	var wg sync.WaitGroup
	switch o.probe {
	case "declared":
		head := []byte(fmt.Sprintf("POST /validate?timeout=30s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", g.addr, 7<<20))
		for range o.c {
			wg.Go(func() {
				c, err := g.dial(ctx)
				if err != nil {
					return
				}
				defer c.Close()
				if _, err := c.Write(head); err == nil {
					sent.Add(1)
				}
				hold, cancel := context.WithTimeout(ctx, o.hold)
				defer cancel()
				<-hold.Done()
			})
		}
	case "bigpods":
		var pod bytes.Buffer
		pod.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big","namespace":"loom"},"spec":{"containers":[`)
		for i := range 49932 {
			if i > 0 {
				pod.WriteByte(',')
			}
			fmt.Fprintf(&pod, `{"name":"c%05d","image":"registry.example.com/app:1.0.%05d"}`, i, i)
		}
		pod.WriteString(`]}}`)
		review := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"name":"big","namespace":"loom","operation":"CREATE","object":%s}}`, pod.Bytes())
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /mutate?timeout=30s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", g.addr, len(review), review)
		req := b.Bytes()
		var next atomic.Int64
		for range o.c {
			wg.Go(func() {
				for next.Add(1) <= int64(o.n) && ctx.Err() == nil {
					c, err := g.dial(ctx)
					if err != nil {
						return
					}
					sent.Add(1)
					_ = c.SetDeadline(time.Now().Add(60 * time.Second))
					if _, err := c.Write(req); err == nil {
						if resp, err := http.ReadResponse(c.br, nil); err == nil {
							resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								answered.Add(1)
							}
						}
					}
					c.Close()
				}
			})
		}
	default:
		stopSampling()
		return fmt.Errorf("unknown -probe %q (want declared or bigpods)", o.probe)
	}
	wg.Wait()
	stopSampling()
	fmt.Printf("probe         %s: %d connections or reviews sent, %d answered with HTTP 200, %d at once\n", o.probe, sent.Load(), answered.Load(), o.c)
	fmt.Printf("server RSS    idle %s  peak %s  after %s\n", mib(idle), mib(peak.Load()), mib(rss(o.pid)))
	return nil
}
