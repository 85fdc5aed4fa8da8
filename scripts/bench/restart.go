//go:build !windows

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// restartRun is one Docker engine restart under a healthy apimdev setup
// (a laptop's reboot, as far as the engine goes): every figure counts from
// the moment the restarted engine answers.
type restartRun struct {
	API     time.Duration // the API server answers /readyz
	Forward time.Duration // the background forward answers the echo call again, untouched
	Up      time.Duration // `apimdev up --detach` started then, to its green smoke
	Err     string
	floorClocks
}

// engineRestart stops and starts the Docker engine with the rig's scripts
// (the rig lock is held: no other suite's clusters are running), restarts
// the configuration service (Azure's endpoint does not go down with a
// laptop), and measures, at once and side by side, the API server, the
// untouched background forward, and `apimdev up` run the moment the engine
// answers; and, beside them, the cluster's own return (floors.go): its pods
// Ready again and a call straight to the node's direct-path port. bin is the
// apimdev binary whose setup it is.
func (b *bench) engineRestart(ctx context.Context, rd *round, env []string, kubeconfig, bin string) (*restartRun, error) {
	scripts := filepath.Join(b.r.root, "scripts", "ci")
	direct, err := directHostAddr(ctx, clusterUp)
	if err != nil {
		return nil, fmt.Errorf("the direct path's port: %w", err)
	}
	since := time.Now()
	if _, err := run(ctx, 3*time.Minute, os.Environ(), filepath.Join(scripts, "stop-docker.sh")); err != nil {
		return nil, fmt.Errorf("stopping the engine: %w", err)
	}
	if _, err := run(ctx, 3*time.Minute, os.Environ(), filepath.Join(scripts, "ensure-docker.sh"), "--isolate-egress"); err != nil {
		return nil, fmt.Errorf("starting the engine: %w", err)
	}
	t0 := time.Now()
	if _, err := run(ctx, time.Minute, os.Environ(), "docker", "start", configContainer); err != nil {
		return nil, fmt.Errorf("restarting the config service: %w", err)
	}
	server, err := apiServerURL(kubeconfig)
	if err != nil {
		return nil, err
	}
	rr := &restartRun{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		rr.Err = strings.TrimSpace(rr.Err + "; " + what + ": " + err.Error())
	}
	wg.Add(5)
	go func() {
		defer wg.Done()
		if err := waitDirect(ctx, direct, 3*time.Minute); err != nil {
			fail("direct call", err)
		}
		rr.Direct = time.Since(t0)
	}()
	go func() {
		defer wg.Done()
		if err := watchPodsBack(ctx, kubeconfig, since, t0, 3*time.Minute, &rr.floorClocks); err != nil {
			fail("pods", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := waitReadyz(ctx, server, 3*time.Minute); err != nil {
			fail("API server", err)
		}
		rr.API = time.Since(t0)
	}()
	go func() {
		defer wg.Done()
		if _, err := waitHTTP(ctx, echoURL(portUpHTTP), keyHeader, 200, 3*time.Minute); err != nil {
			fail("background forward", err)
		}
		rr.Forward = time.Since(t0)
	}()
	go func() {
		defer wg.Done()
		res, err := run(ctx, 4*time.Minute, env, bin, b.upArgs("up")...) // exits 0 only on a green smoke
		rr.Up = time.Since(t0)
		rr.UpSteps = upSteps(res.Out)
		rr.UpFirstStep = firstEvent(res.Out).Sub(t0)
		if err != nil {
			fail("up", err)
		}
	}()
	wg.Wait()
	logf("round %d: engine restart (%s): API server after %.1fs, background forward after %.1fs (%.1fs after the API server), up green after %.1fs%s",
		rd.N, filepath.Base(bin), rr.API.Seconds(), rr.Forward.Seconds(), (rr.Forward - rr.API).Seconds(), rr.Up.Seconds(), rr.Err)
	logf("round %d: floors: kube-proxy %.1fs, CoreDNS %.1fs, gateway started %.0fs, Ready %.1fs, direct call %.1fs; up %.2f× the floor (%s)",
		rd.N, rr.ProxyBack.Seconds(), rr.DNSBack.Seconds(), rr.GwStarted.Seconds(), rr.GwReady.Seconds(), rr.Direct.Seconds(), rr.Up.Seconds()/max(rr.Direct.Seconds(), 0.001), stagesText(rr.UpSteps))
	return rr, nil
}

// apiServerURL is the server of the first cluster in a kubeconfig file.
func apiServerURL(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "server: "); ok {
			if err := loopback(v); err != nil {
				return "", err
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s names no server", path)
}

// waitReadyz polls the API server's /readyz (anonymous, as kubeadm allows)
// until it says ok. The server's certificate is kind's own CA's; the call
// goes to 127.0.0.1 and carries nothing, so it is not verified.
func waitReadyz(ctx context.Context, server string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s/readyz not ok within %s", server, limit)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
