//go:build !windows

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apimdev/apimdev/internal/imagetar"
)

// The backends phase: the same program as a backend on the laptop (through
// apimdev's relay) and as a pod in the cluster, called through the gateway.
const (
	backendImage  = "apimdev-bench/backend:dev"
	laptopBackend = "laptop" // STANDIN_APIS: /laptop → http://laptop:8081
	inpodBackend  = "inpod"  // STANDIN_APIS: /inpod → http://inpod:8080
	uploadBytes   = 100 << 20
	relayCtr      = "relay" // the relay's container, as the backend pipeline names it
)

// benchAPIs is the config service's STANDIN_APIS: the two backends' APIs.
func benchAPIs() string {
	b, _ := json.Marshal([]map[string]any{
		{"name": laptopBackend, "path": "/" + laptopBackend, "backendUrl": "http://" + laptopBackend + ":8081", "subscriptionRequired": false},
		{"name": inpodBackend, "path": "/" + inpodBackend, "backendUrl": "http://" + inpodBackend + ":8080", "subscriptionRequired": false},
	})
	return string(b)
}

// backendRun is one round's backend figures.
type backendRun struct {
	Loads        []namedLoad // Via: laptopBackend or inpodBackend
	RelayCPU     time.Duration
	RelayReqs    int
	RelayRSSKB   int64 // the relay container's working set after the load
	Upload       time.Duration
	UploadOK     bool
	FwdRSSBefore int64 // the background forward's VmRSS before the upload (kB)
	FwdHWMAfter  int64 // its VmHWM after it
}

// buildBackend builds backendsrv static for Linux and loads its image into
// the engine (nothing pulled): once per bench run.
func (r *rig) buildBackend(ctx context.Context) error {
	if r.backendBin != "" {
		return nil
	}
	bin := filepath.Join(r.tmp, "backendsrv")
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if _, err := run(ctx, 5*time.Minute, env, "go", "-C", r.root, "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./scripts/bench/backendsrv"); err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	arch, err := imagetar.Arch(data)
	if err != nil {
		return err
	}
	var tarball bytes.Buffer
	if err := imagetar.Write(&tarball, imagetar.Image{Arch: arch, Name: "backendsrv", Binary: data, Ref: backendImage,
		Config:    map[string]any{"User": "1001", "Entrypoint": []string{"/backendsrv"}, "ExposedPorts": map[string]any{"8080/tcp": map[string]any{}}},
		CreatedBy: "apimdev bench: scripts/bench/backendsrv"}); err != nil {
		return err
	}
	tarPath := filepath.Join(r.tmp, "backendsrv.tar")
	if err := os.WriteFile(tarPath, tarball.Bytes(), 0o600); err != nil {
		return err
	}
	if _, err := run(ctx, 2*time.Minute, os.Environ(), "docker", "load", "-i", tarPath); err != nil {
		return err
	}
	r.backendBin = bin
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// backends: the laptop's backend and the in-cluster one, both the same
// program, called through the gateway's forward.
func (b *bench) backends(ctx context.Context, rd *round, env []string) error {
	if err := b.r.buildBackend(ctx); err != nil {
		return fmt.Errorf("backend program: %w", err)
	}
	dir := filepath.Join(b.upHome(rd.N), "backends")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	local, err := startBG(os.Environ(), filepath.Join(dir, "backendsrv.log"), b.r.backendBin, "-addr", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	b.bgs = append(b.bgs, local)
	defer local.stop()
	if _, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/x", port), nil, 200, 10*time.Second); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	for _, args := range [][]string{{"backend", "add", laptopBackend, "--to", "127.0.0.1:" + strconv.Itoa(port), "--port", "8081"},
		{"backend", "add", inpodBackend, "--image", backendImage, "--port", "8080"}} {
		if _, err := run(ctx, 5*time.Minute, env, b.r.apimdev, args...); err != nil {
			return fmt.Errorf("apimdev %s: %w", strings.Join(args[:3], " "), err)
		}
	}
	url := func(name, path string) string { return fmt.Sprintf("http://127.0.0.1:%d/%s%s", portUpHTTP, name, path) }
	for _, n := range []string{laptopBackend, inpodBackend} {
		if d, err := waitHTTP(ctx, url(n, "/x"), nil, 200, 2*time.Minute); err != nil {
			return fmt.Errorf("backend %s through the gateway: %w", n, err)
		} else {
			logf("round %d: backend %s answers through the gateway (%.1fs)", rd.N, n, d.Seconds())
		}
	}
	br := &backendRun{}
	rd.Backends = br
	node := clusterUp + "-control-plane"
	names := []string{laptopBackend, inpodBackend}
	if rd.N%2 == 0 { // a different backend goes first each round
		names[0], names[1] = names[1], names[0]
	}
	for _, keep := range []bool{true, false} {
		n := b.o.requests
		if !keep {
			n = b.o.newConnRequests
		}
		for _, name := range names {
			u := url(name, "/x")
			if _, err := load(ctx, u, nil, 200, b.o.conc, keep, time.Minute); err != nil {
				return fmt.Errorf("%s warm-up: %w", name, err)
			}
			measureRelay := name == laptopBackend && keep
			var before containerStats
			if measureRelay {
				if before, err = relayStats(ctx, node); err != nil {
					return err
				}
			}
			lr, err := load(ctx, u, nil, n, b.o.conc, keep, 3*time.Minute)
			if err != nil {
				return fmt.Errorf("backend %s: %w", name, err)
			}
			if measureRelay {
				after, err := relayStats(ctx, node)
				if err != nil {
					return err
				}
				br.RelayCPU, br.RelayReqs, br.RelayRSSKB = time.Duration(after.CPUNanos-before.CPUNanos), lr.Sent, after.WorkingSet/1024
			}
			br.Loads = append(br.Loads, namedLoad{name, lr})
			logf("round %d: backend %-7s %-10s %5d req, %d failed, p50 %.2fms, p99 %.2fms, %.0f req/s", rd.N, name, connMode(keep),
				lr.Sent, lr.Failed, ms(lr.P50), ms(lr.P99), lr.RPS())
		}
	}
	logf("round %d: relay CPU %.0f µs/req, working set %s", rd.N, float64(br.RelayCPU.Microseconds())/float64(max(1, br.RelayReqs)), mib(br.RelayRSSKB))

	fwdPID, err := forwardPID(b.upHome(rd.N))
	if err != nil {
		return err
	}
	br.FwdRSSBefore = vmRSS(fwdPID)
	start := time.Now()
	if err := upload(ctx, url(laptopBackend, "/upload"), uploadBytes); err != nil {
		return fmt.Errorf("100 MB upload: %w", err)
	}
	br.Upload, br.UploadOK, br.FwdHWMAfter = time.Since(start), true, vmHWM(fwdPID)
	logf("round %d: 100 MB upload to the laptop's backend %.1fs, checksum equal; the forward's RSS %s before, peak %s after",
		rd.N, br.Upload.Seconds(), mib(br.FwdRSSBefore), mib(br.FwdHWMAfter))
	return nil
}

// forwardPID is the background forward's pid, from its record in the state
// directory.
func forwardPID(home string) (int, error) {
	data, err := os.ReadFile(filepath.Join(home, "state", "clusters", clusterUp, "forward.json"))
	if err != nil {
		return 0, fmt.Errorf("the background forward's record: %w", err)
	}
	var rec struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.PID <= 0 {
		return 0, fmt.Errorf("the background forward's record has no pid: %s", data)
	}
	return rec.PID, nil
}

// upload streams n pseudo-random bytes to url (127.0.0.1 only) and checks
// the backend's answer, "LENGTH SHA256", against what was sent.
func upload(ctx context.Context, url string, n int64) error {
	if err := loopback(url); err != nil {
		return err
	}
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(&randReader{rand.NewPCG(28, 28)}, n), h)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return err
	}
	req.ContentLength = -1 // streamed: chunked, not buffered anywhere on the way
	req.Header.Set("Content-Type", "application/octet-stream")
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(got)))
	}
	want := fmt.Sprintf("%d %s", n, hex.EncodeToString(h.Sum(nil)))
	if strings.TrimSpace(string(got)) != want {
		return fmt.Errorf("the backend received %q, sent %q", strings.TrimSpace(string(got)), want)
	}
	return nil
}

type randReader struct{ src *rand.PCG }

func (r *randReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		v := r.src.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return len(p), nil
}

// containerStats is one container's CPU and memory as the CRI reports them.
type containerStats struct {
	CPUNanos   int64
	WorkingSet int64 // bytes
}

// criUint reads a CRI stats value: protobuf's JSON writes uint64 as a string.
type criUint struct {
	Value json.RawMessage `json:"value"`
}

func (c criUint) int64() int64 {
	n, _ := strconv.ParseInt(strings.Trim(string(c.Value), `"`), 10, 64)
	return n
}

// relayStats reads the relay container's stats on the node with crictl.
func relayStats(ctx context.Context, node string) (containerStats, error) {
	res, err := run(ctx, 30*time.Second, os.Environ(), "docker", "exec", node, "crictl", "stats", "-o", "json", "--label", "io.kubernetes.container.name="+relayCtr)
	if err != nil {
		return containerStats{}, fmt.Errorf("crictl stats: %w", err)
	}
	return parseRelayStats([]byte(res.Out))
}

func parseRelayStats(out []byte) (containerStats, error) {
	var v struct {
		Stats []struct {
			Attributes struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Labels map[string]string `json:"labels"`
			} `json:"attributes"`
			CPU struct {
				UsageCoreNanoSeconds criUint `json:"usageCoreNanoSeconds"`
			} `json:"cpu"`
			Memory struct {
				WorkingSetBytes criUint `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return containerStats{}, fmt.Errorf("crictl stats: %w", err)
	}
	for _, s := range v.Stats {
		if s.Attributes.Metadata.Name == relayCtr && s.Attributes.Labels["io.kubernetes.pod.namespace"] == namespace {
			return containerStats{CPUNanos: s.CPU.UsageCoreNanoSeconds.int64(), WorkingSet: s.Memory.WorkingSetBytes.int64()}, nil
		}
	}
	return containerStats{}, errors.New("crictl stats: no relay container")
}

// backendTable is the backends phase's table: the laptop's backend against
// the same program in the cluster, medians over the rounds, with the goals
// of issue 28.
func (b *bench) backendTable() string {
	brs := collect(b.rounds, func(r *round) (*backendRun, bool) { return r.Backends, r.Backends != nil })
	if len(brs) == 0 {
		return ""
	}
	type key struct {
		name string
		keep bool
	}
	type fig struct {
		p50, p99, rps float64
		n, failed     int
	}
	figs := map[key]*fig{}
	for _, k := range []key{{laptopBackend, true}, {inpodBackend, true}, {laptopBackend, false}, {inpodBackend, false}} {
		var p50, p99, rps []float64
		f := &fig{}
		for _, br := range brs {
			for _, l := range br.Loads {
				if l.Via == k.name && l.KeepOpen == k.keep {
					p50, p99, rps = append(p50, ms(l.P50)), append(p99, ms(l.P99)), append(rps, l.RPS())
					f.n, f.failed = f.n+1, f.failed+l.Failed
				}
			}
		}
		f.p50, f.p99, f.rps = medianF(p50), medianF(p99), medianF(rps)
		figs[k] = f
	}
	var cpu, rss, up, growth, before, hwm []float64
	uploadsOK := 0
	for _, br := range brs {
		cpu = append(cpu, float64(br.RelayCPU.Microseconds())/float64(max(1, br.RelayReqs)))
		rss = append(rss, float64(br.RelayRSSKB)/1024)
		if br.UploadOK {
			uploadsOK++
			up = append(up, br.Upload.Seconds())
			growth = append(growth, float64(br.FwdHWMAfter-br.FwdRSSBefore)/1024)
			before, hwm = append(before, float64(br.FwdRSSBefore)/1024), append(hwm, float64(br.FwdHWMAfter)/1024)
		}
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Backends: the same program (scripts/bench/backendsrv) as a backend on the laptop (`apimdev backend add %s --to 127.0.0.1:PORT`, through the relay) and in the cluster (`apimdev backend add %s --image`), GET /NAME/x through the gateway and apimdev's forward, closed loop at concurrency %d (medians of %d round(s)):",
		laptopBackend, inpodBackend, b.o.conc, len(brs))
	p("")
	p("| measure | laptop (relay) | in the cluster | laptop / in-cluster | goal | |")
	p("| --- | --- | --- | --- | --- | --- |")
	ratio := func(x, y float64) (float64, string) {
		if y == 0 {
			return 0, "—"
		}
		return x / y, fmt.Sprintf("%.2f×", x/y)
	}
	for _, keep := range []bool{true, false} {
		l, c := figs[key{laptopBackend, keep}], figs[key{inpodBackend, keep}]
		if l.n == 0 || c.n == 0 {
			continue
		}
		mode := connMode(keep)
		r, rs := ratio(l.p50, c.p50)
		p("| p50, %s | %.2f ms | %.2f ms | %s | ≤ 1.5× | %s |", mode, l.p50, c.p50, rs, verdict(rs != "—" && r <= 1.5))
		_, rs = ratio(l.p99, c.p99)
		p("| p99, %s | %.2f ms | %.2f ms | %s | | |", mode, l.p99, c.p99, rs)
		r, rs = ratio(l.rps, c.rps)
		p("| requests/s, %s | %.0f | %.0f | %s | ≥ 0.7× | %s |", mode, l.rps, c.rps, rs, verdict(rs != "—" && r >= 0.7))
		p("| failed, %s (all rounds) | %d | %d | | 0 | %s |", mode, l.failed, c.failed, verdict(l.failed+c.failed == 0))
	}
	p("| relay CPU per request (keep-alive load, crictl stats) | %.0f µs | — | | | |", medianF(cpu))
	p("| relay working set after the keep-alive load | %.1f MiB | — | | | |", medianF(rss))
	if len(up) > 0 {
		g := medianF(growth)
		p("| 100 MB streamed POST to the laptop's backend (checksum equal in %d/%d) | %.1f s | — | | | |", uploadsOK, len(brs), medianF(up))
		p("| the forward's RSS growth during it (VmRSS %.1f MiB before → VmHWM %.1f MiB after) | %.1f MiB | — | | < 20 MiB | %s |",
			medianF(before), medianF(hwm), g, verdict(g < 20 && uploadsOK == len(brs)))
	}
	p("")
	return w.String()
}
