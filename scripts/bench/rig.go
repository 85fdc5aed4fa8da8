//go:build !windows

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Names and ports. Clusters are apimdev-bench-*; ports are 29080 and up, so
// nothing here collides with the e2e suites' (17380-28443), and all are
// below Linux's ephemeral range (32768-60999): an outgoing connection of the
// machine (the load runs make thousands) can hold a port in it as its own.
const (
	gwName          = "contoso-gw"
	namespace       = "apim-gateway"
	liveService     = gwName + "-live-traffic"
	probePath       = "/status-0123456789abcdef"
	configContainer = "apimdev-bench-config"
	configAlias     = "config.apimdev-bench.test"
	endpoint        = configAlias + ":8443"
	clusterUp       = "apimdev-bench-up"
	clusterManual   = "apimdev-bench-manual"
	subKey          = "bench-subscription-key"

	portUpHTTP      = 29080 // apimdev up's forward
	portUpHTTPS     = 29443
	portManHTTP     = 29081 // the manual script's kubectl port-forward
	portManHTTPS    = 29444
	portNodePort    = 29082 // extraPortMapping of the manual cluster → NodePort 30080
	nodePort        = 30080
	portPFHTTP      = 29083 // kubectl port-forward for the load runs
	portPFHTTPS     = 29446
	portFwdHTTP     = 29084 // apimdev forward --via tunnel for the load runs
	portFwdHTTPS    = 29447
	portDirHTTP     = 29085 // apimdev forward --via node for the load runs
	portDirHTTPS    = 29448
	portConfigProbe = 29099 // the config service's health, published on 127.0.0.1
)

// rig is what the e2e rig scripts prepared and what the bench built.
type rig struct {
	root                   string // repository root
	tmp                    string
	kind, kubectl, apimdev string
	nodeImage, image       string
	statsdImage            string
	gatewayKey, token      string
	tokenFile, portalYAML  string
	kindConfig             string
	backendBin             string // the backends phase's program, built once
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(ls[len(ls)-1])
}

// prepare runs the e2e rig's scripts (cached: seconds when nothing changed),
// builds apimdev as `make build` does, mints a token and renders the portal
// YAML for the manual path.
func prepare(ctx context.Context, root, tmp, cache, prebuilt string, logf func(string, ...any)) (*rig, error) {
	r := &rig{root: root, tmp: tmp, kind: filepath.Join(cache, "bin", "kind"), kubectl: filepath.Join(cache, "bin", "kubectl")}
	env := os.Environ()
	script := func(name string, args ...string) (string, error) {
		start := time.Now()
		res, err := run(ctx, 40*time.Minute, env, filepath.Join(root, name), args...)
		if err != nil {
			return "", err
		}
		logf("rig: %s (%.1fs)", name, time.Since(start).Seconds())
		return lastLine(res.Out), nil
	}
	if _, err := script("scripts/ci/ensure-docker.sh", "--isolate-egress"); err != nil {
		return nil, err
	}
	var err error
	if r.nodeImage, err = script("scripts/e2e/node-image.sh"); err != nil {
		return nil, err
	}
	if r.image, err = script("scripts/e2e/standin-image.sh"); err != nil {
		return nil, err
	}
	if r.statsdImage, err = script("scripts/e2e/statsd-image.sh"); err != nil {
		return nil, err
	}
	for _, p := range []string{r.kind, r.kubectl} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("the rig has no %s: %w", p, err)
		}
	}
	// The same build as `make build`: trimmed, stripped; static, because
	// `backend add --to` makes the relay's image from this very program.
	r.apimdev = filepath.Join(tmp, "apimdev")
	if prebuilt != "" {
		r.apimdev = prebuilt
	} else if _, err := run(ctx, 10*time.Minute, append(env, "CGO_ENABLED=0"), "go", "-C", root, "build", "-trimpath", "-ldflags",
		"-s -w -X github.com/apimdev/apimdev/internal/cli.Version=bench", "-o", r.apimdev, "."); err != nil {
		return nil, err
	}
	r.gatewayKey = "bench-" + randHex(16)
	res, err := run(ctx, time.Minute, env, "docker", "run", "--rm", "-e", "STANDIN_GATEWAY_KEY="+r.gatewayKey, r.image,
		"mint-token", "--id", gwName, "--valid-for", "720h")
	if err != nil {
		return nil, err
	}
	r.token = lastLine(res.Out)
	r.tokenFile = filepath.Join(tmp, "gw.token")
	if err := os.WriteFile(r.tokenFile, []byte(r.token+"\n"), 0o600); err != nil {
		return nil, err
	}
	// The portal YAML: what `apimdev render` prints (the same objects `up`
	// applies), with the redacted signature put back, as the portal shows it.
	res, err = run(ctx, time.Minute, append(r.isolated(filepath.Join(tmp, "render")), "APIMDEV_TOKEN_FILE="+r.tokenFile),
		r.apimdev, "render", "--profile", "dev", "-o", "yaml", "--name", gwName, "--endpoint", endpoint, "--image", r.image)
	if err != nil {
		return nil, err
	}
	sig := r.token[strings.LastIndex(r.token, "&")+1:]
	yaml := strings.Replace(res.Out, "<redacted>", sig, 1)
	if !strings.Contains(yaml, sig) || strings.Contains(yaml, "<redacted>") {
		return nil, fmt.Errorf("render: the token placeholder is not where the bench expects it")
	}
	r.portalYAML = filepath.Join(tmp, "portal.yaml")
	if err := os.WriteFile(r.portalYAML, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	r.kindConfig = filepath.Join(tmp, "kind-manual.yaml")
	kc := fmt.Sprintf(`kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: 127.0.0.1
nodes:
- role: control-plane
  extraPortMappings:
  - {containerPort: %d, hostPort: %d, listenAddress: 127.0.0.1, protocol: TCP}
  # apimdev's direct path, as a cluster apimdev creates publishes it (kind picks the host ports)
  - {containerPort: 31080, hostPort: 0, listenAddress: 127.0.0.1, protocol: TCP}
  - {containerPort: 31443, hostPort: 0, listenAddress: 127.0.0.1, protocol: TCP}
`, nodePort, portNodePort)
	return r, os.WriteFile(r.kindConfig, []byte(kc), 0o600)
}

// isolated is an environment of its own: HOME, apimdev's state directory and
// no KUBECONFIG, so nothing of the user's is read or written.
func (r *rig) isolated(dir string) []string {
	home, state := filepath.Join(dir, "home"), filepath.Join(dir, "state")
	_ = os.MkdirAll(home, 0o700)
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "APIMDEV_") || k == "KUBECONFIG" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "APIMDEV_HOME="+state, "KUBECONFIG=", "APIM_SUBSCRIPTION_KEY="+subKey)
}

// startConfigService runs the stand-in configuration service (test
// infrastructure) as a container on kind's Docker network, reachable from
// the pods as config.apimdev-bench.test:8443, before either arm starts: like
// Azure's configuration endpoint, it exists before any cluster does.
func (r *rig) startConfigService(ctx context.Context) error {
	env := os.Environ()
	r.stopConfigService()
	if _, err := run(ctx, time.Minute, env, "docker", "network", "inspect", "kind"); err != nil {
		// kind makes this network on its first cluster; make it as kind does.
		if _, err := run(ctx, time.Minute, env, "docker", "network", "create", "-d", "bridge",
			"-o", "com.docker.network.bridge.enable_ip_masquerade=true", "-o", "com.docker.network.driver.mtu=1500", "kind"); err != nil {
			return err
		}
	}
	// A fixed address at the top of kind's subnet: after an engine restart
	// (the bench restarts it), containers get addresses again in the order
	// they start, and a kind node that comes back with another address than
	// its etcd and API server were made for never comes up (kind's own
	// limit). With this container off the dynamic range, the node gets its
	// address back.
	args := []string{"run", "-d", "--name", configContainer, "--network", "kind", "--network-alias", configAlias,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", portConfigProbe), "-e", "STANDIN_GATEWAY_KEY=" + r.gatewayKey, "-e", "STANDIN_SUBSCRIPTION_KEYS=" + subKey,
		"-e", "STANDIN_APIS=" + benchAPIs()}
	if ip, err := topOfKindSubnet(ctx); err == nil {
		args = append(args, "--ip", ip)
	} else {
		logf("config service: no fixed address (%v); an engine restart may give the node another one", err)
	}
	if _, err := run(ctx, time.Minute, env, "docker", append(args, r.image, "config-service")...); err != nil {
		return err
	}
	_, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", portConfigProbe), nil, 200, 30*time.Second)
	return err
}

func (r *rig) stopConfigService() {
	_, _ = run(context.Background(), time.Minute, os.Environ(), "docker", "rm", "-f", configContainer)
}

// deleteCluster removes a bench cluster if it exists (names apimdev-bench-* only).
func (r *rig) deleteCluster(name string) {
	if !strings.HasPrefix(name, "apimdev-bench-") {
		panic("bench: refusing to delete cluster " + name)
	}
	res, err := run(context.Background(), time.Minute, os.Environ(), r.kind, "get", "clusters")
	if err != nil {
		return
	}
	for _, c := range strings.Fields(res.Out) {
		if c == name {
			_, _ = run(context.Background(), 3*time.Minute, os.Environ(), r.kind, "delete", "cluster", "--name", name,
				"--kubeconfig", filepath.Join(r.tmp, "deleted-"+name+".kubeconfig"))
		}
	}
}

// machine describes where the figures come from.
func machine(ctx context.Context, r *rig) []string {
	env := os.Environ()
	read := func(path, key string) string {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
			if k, v, ok := strings.Cut(l, "="); ok && k == key {
				return strings.Trim(v, `"`)
			}
		}
		return "?"
	}
	out := func(name string, args ...string) string {
		res, err := run(ctx, 30*time.Second, env, name, args...)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(strings.Split(strings.TrimSpace(res.Out), "\n")[0])
	}
	mem := read("/proc/meminfo", "MemTotal")
	var kb int64
	fmt.Sscanf(mem, "%d", &kb)
	others := 0
	if res, err := run(ctx, 30*time.Second, env, "docker", "ps", "--filter", "label=io.x-k8s.kind.role", "--format", "{{.Names}}"); err == nil {
		for _, n := range strings.Fields(res.Out) {
			if !strings.HasPrefix(n, "apimdev-bench-") {
				others++
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return []string{
		fmt.Sprintf("%s, %d CPUs (%s), %.1f GiB memory, kernel %s", read("/etc/os-release", "PRETTY_NAME"), runtime.NumCPU(),
			read("/proc/cpuinfo", "model name"), float64(kb)/(1<<20), out("uname", "-r")),
		fmt.Sprintf("Docker %s, %s, kind %s, kubectl %s", out("docker", "version", "-f", "{{.Server.Version}}"), runtime.Version(),
			strings.Fields(out(r.kind, "version") + " ? ?")[1], strings.TrimPrefix(out(r.kubectl, "version", "--client"), "Client Version: ")),
		fmt.Sprintf("node image %s, gateway image %s (the stand-in: test infrastructure, not Azure)", r.nodeImage, r.image),
		fmt.Sprintf("at the start: load average %s; %d kind node(s) of other users running (idle, theirs)", strings.Join(strings.Fields(string(load))[:3], " "), others),
	}
}

// topOfKindSubnet is an IPv4 address 5 below the broadcast address of kind's
// network, which dynamic allocation reaches last.
func topOfKindSubnet(ctx context.Context) (string, error) {
	res, err := run(ctx, time.Minute, os.Environ(), "docker", "network", "inspect", "kind", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}")
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(res.Out) {
		_, n, err := net.ParseCIDR(f)
		if err != nil || n.IP.To4() == nil {
			continue
		}
		ip := n.IP.To4()
		ones, bits := n.Mask.Size()
		v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
		v |= (1<<(bits-ones) - 1)
		v -= 5
		return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String(), nil
	}
	return "", fmt.Errorf("kind's network has no IPv4 subnet: %q", res.Out)
}
