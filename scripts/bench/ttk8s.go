//go:build !windows

package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// k8sTimes are minikube's time-to-k8s marks of one cold run, each counted
// from the start of the arm's command: when the new cluster's API server
// answered /readyz, and when its DNS (CoreDNS's EndpointSlice) had a ready
// endpoint. Zero: not seen; Err says why.
type k8sTimes struct {
	API, DNS time.Duration
	Err      string
}

// k8sWatch is a watcher goroutine started with an arm's command.
type k8sWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	t      k8sTimes
}

// watchK8s starts watching the control-plane node of cluster come up: its
// published API server port (the engine's), then /readyz through it, then,
// with the cluster's admin kubeconfig (`kind get kubeconfig`, read once
// after the API server answers), kube-dns's EndpointSlice. It polls every
// 150–200 ms, bounded by limit; finish or stop joins it.
func (b *bench) watchK8s(ctx context.Context, cluster string, start time.Time, limit time.Duration) *k8sWatch {
	ctx, cancel := context.WithTimeout(ctx, limit)
	w := &k8sWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.t = watchCluster(ctx, b.r.kind, cluster, start)
	}()
	return w
}

// finish gives the watcher up to grace to see what it has not seen yet (the
// arm's first green call came first), then stops it and returns its marks.
func (w *k8sWatch) finish(grace time.Duration) k8sTimes {
	select {
	case <-w.done:
	case <-time.After(grace):
	}
	w.stop()
	return w.t
}

// stop ends the watcher and waits for it.
func (w *k8sWatch) stop() {
	w.cancel()
	<-w.done
}

func watchCluster(ctx context.Context, kind, cluster string, start time.Time) k8sTimes {
	var t k8sTimes
	node := cluster + "-control-plane"
	tick := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	// 1. The engine publishes the API server's port when it creates the node.
	var server string
	for server == "" {
		if res, err := run(ctx, 10*time.Second, os.Environ(), "docker", "port", node, "6443/tcp"); err == nil {
			server = apiFromDockerPort(res.Out)
		}
		if server == "" && !tick(200*time.Millisecond) {
			t.Err = "the node's API server port was never published"
			return t
		}
	}
	// 2. /readyz answers ok (anonymous, as kubeadm allows).
	if err := waitReadyz(ctx, server, time.Until(deadlineOr(ctx))); err != nil {
		t.Err = "API server: " + err.Error()
		return t
	}
	t.API = time.Since(start)
	logf("time-to-k8s: %s: API server answering after %.1fs", cluster, t.API.Seconds())
	// 3. The admin credentials, once; kind writes them before the API
	// server starts, so this is a retry only if the engine is slow to exec.
	var cred *kubeCred
	for cred == nil {
		if res, err := run(ctx, 30*time.Second, os.Environ(), kind, "get", "kubeconfig", "--name", cluster); err == nil {
			cred, _ = parseKubeCred(res.Out)
		}
		if cred == nil && !tick(500*time.Millisecond) {
			t.Err = "no admin kubeconfig from kind"
			return t
		}
	}
	c, err := cred.client()
	if err != nil {
		t.Err = err.Error()
		return t
	}
	defer c.CloseIdleConnections()
	// 4. kube-dns has a ready endpoint.
	url := server + "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == 200 && dnsReady(body) {
				t.DNS = time.Since(start)
				logf("time-to-k8s: %s: DNS answering after %.1fs", cluster, t.DNS.Seconds())
				return t
			}
		}
		if !tick(200 * time.Millisecond) {
			t.Err = "no ready kube-dns endpoint"
			return t
		}
	}
}

func deadlineOr(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(8 * time.Minute)
}

// apiFromDockerPort is the API server's URL from `docker port NODE
// 6443/tcp` (one "address:port" a line; the IPv4 loopback one).
func apiFromDockerPort(out string) string {
	addr, err := loopbackAddr(out)
	if err != nil || strings.TrimPrefix(addr, "127.0.0.1:") == "" {
		return ""
	}
	return "https://" + addr
}

// kubeCred is a kubeconfig's client certificate and key (kind's admin).
type kubeCred struct{ cert, key []byte }

// parseKubeCred reads client-certificate-data and client-key-data from a
// kubeconfig as kind writes it (one user, base64 on one line each).
func parseKubeCred(kubeconfig string) (*kubeCred, error) {
	var c kubeCred
	for _, l := range strings.Split(kubeconfig, "\n") {
		l = strings.TrimSpace(l)
		for _, f := range []struct {
			key string
			to  *[]byte
		}{{"client-certificate-data:", &c.cert}, {"client-key-data:", &c.key}} {
			if v, ok := strings.CutPrefix(l, f.key); ok {
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
				if err != nil {
					return nil, fmt.Errorf("kubeconfig %s %w", f.key, err)
				}
				*f.to = b
			}
		}
	}
	if len(c.cert) == 0 || len(c.key) == 0 {
		return nil, errors.New("the kubeconfig has no client certificate and key")
	}
	return &c, nil
}

// client is an HTTP client that presents the credentials. The server's
// certificate is the cluster's own CA's and the calls go to 127.0.0.1, so
// it is not verified.
func (c *kubeCred) client() (*http.Client, error) {
	pair, err := tls.X509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}}}, nil //nolint:gosec // see above
}

// dnsReady says an EndpointSliceList has an endpoint whose ready condition
// is true (the API's own meaning: nil counts as ready).
func dnsReady(body []byte) bool {
	var l struct {
		Items []struct {
			Endpoints []struct {
				Conditions struct {
					Ready *bool `json:"ready"`
				} `json:"conditions"`
			} `json:"endpoints"`
		} `json:"items"`
	}
	if json.Unmarshal(body, &l) != nil {
		return false
	}
	for _, it := range l.Items {
		for _, e := range it.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

// published are the totals minikube's time-to-k8s benchmark page for
// v1.36 shows (their machine, not measured here).
var published = []struct{ tool, total string }{
	{"kind v0.29", "33.0 s"}, {"k3d v5.8.3", "19.9 s"}, {"minikube v1.36", "50.8 s"},
}

const ttk8sSource = "https://minikube.sigs.k8s.io/docs/benchmarks/timetok8s/"

// ttk8sTable is the cold runs in minikube's time-to-k8s form, medians of the
// rounds, each mark counted from the start of the arm's command, beside the
// totals that page publishes.
func (b *bench) ttk8sTable(plain *coldRun) string {
	type row struct {
		tool string
		runs []coldRun
	}
	var rows []row
	get := func(f func(*round) coldRun) []coldRun {
		var out []coldRun
		for _, r := range b.rounds {
			if c := f(r); c.Cmd > 0 {
				out = append(out, c)
			}
		}
		return out
	}
	rows = append(rows, row{"apimdev: `apimdev up --detach` (A)", get(func(r *round) coldRun { return r.Up.coldRun })})
	if b.o.compare != "" {
		rows = append(rows, row{"apimdev [" + b.o.compareLabel + "] (C)", get(func(r *round) coldRun { return r.Cmp.coldRun })})
	}
	rows = append(rows, row{"manual: kind create, kind load, kubectl apply, rollout status, port-forward, curl (B)", get(func(r *round) coldRun { return r.Manual })})
	if plain != nil && plain.Cmd > 0 {
		rows = append(rows, row{"plain `kind create cluster` (nothing deployed; round 1 only)", []coldRun{*plain}})
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	some := false
	for _, r := range rows {
		some = some || len(r.runs) > 0
	}
	if !some {
		return ""
	}
	p("Time to Kubernetes, in the form of minikube's time-to-k8s benchmark: each mark counted from the start of the command, medians of the rounds (API server: `/readyz` ok through the node's published port; DNS: CoreDNS's EndpointSlice has a ready endpoint; app running: the bench's first green call through the arm's forward):")
	p("")
	p("| tool | command exits | API server answering | DNS answering | app running (total) | marks missing |")
	p("| --- | --- | --- | --- | --- | --- |")
	mark := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "—"
		}
		return secs(median(ds))
	}
	for _, r := range rows {
		if len(r.runs) == 0 {
			continue
		}
		var cmd, api, dns, total []time.Duration
		missing := 0
		for _, c := range r.runs {
			cmd = append(cmd, c.Cmd)
			total = append(total, c.Total)
			if c.K8s.API > 0 {
				api = append(api, c.K8s.API)
			}
			if c.K8s.DNS > 0 {
				dns = append(dns, c.K8s.DNS)
			}
			if c.K8s.API == 0 || c.K8s.DNS == 0 {
				missing++
			}
		}
		app := mark(total)
		if strings.HasPrefix(r.tool, "plain") {
			app = "—"
		}
		p("| %s | %s | %s | %s | %s | %d of %d |", r.tool, mark(cmd), mark(api), mark(dns), app, missing, len(r.runs))
	}
	for _, x := range published {
		p("| %s, published total ([minikube's time-to-k8s page](%s), v1.36; their machine, **not measured here**) | | | | %s | |", x.tool, ttk8sSource, x.total)
	}
	p("")
	return w.String()
}
