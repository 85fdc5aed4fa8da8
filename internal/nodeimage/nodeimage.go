// Package nodeimage builds a kind node image on this machine with nothing
// pulled from a registry: Kubernetes, etcd, CoreDNS, crictl and pause built
// from the Go module proxy, the node's Debian root filesystem from
// debootstrap, the component images made locally and preloaded. It runs the
// scripts the e2e rig runs (embedded in apimdev, see package scripts), so
// `apimdev node-image build` and `make e2e` build the same image the same
// way, cached by version in a directory of the caller's.
//
// It also finds such an image when one was built before. It imports nothing
// of apimdev's but the embedded scripts, and talks to Docker only through
// the docker CLI the scripts use and the small interface below.
package nodeimage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apimdev/apimdev/internal/safedir"
	"github.com/apimdev/apimdev/scripts"
)

// KubernetesVersion is the version the node image runs (the rig's).
const KubernetesVersion = "v1.34.4"

// DefaultImage is what `apimdev node-image build` makes.
const DefaultImage = "apimdev/kind-node:" + KubernetesVersion

// Label marks every node image these scripts built (its value is the hash
// of the scripts that built it).
const Label = "io.apimdev.e2e.rig-hash"

// Estimate is how long a build from a cold cache takes on 2 cores (measured
// on the e2e machine); each stage's own estimate is in stageEstimates.
const Estimate = 11 * time.Minute

// EstimateText says Estimate in words.
const EstimateText = "about 11 minutes on 2 cores"

// stageEstimates are each stage's cold time on 2 cores, from the rig's
// timings (the root filesystems are built while the Go programs compile).
var stageEstimates = map[string]time.Duration{
	"tools": 2 * time.Second, "pause": 9 * time.Second, "runc-capdrop": time.Second, "kind": 19 * time.Second,
	"node-rootfs": 70 * time.Second, "etcd": 45 * time.Second, "kube-proxy-rootfs": 80 * time.Second,
	"crictl": 85 * time.Second, "coredns": 135 * time.Second, "kubernetes": 300 * time.Second,
	"component-images": 9 * time.Second, "node-stage": 2 * time.Second, "preload": 9 * time.Second, "node-import": 8 * time.Second,
}

// Stage is one stage of a build, as it starts or ends.
type Stage struct {
	Name     string
	Done     bool
	Took     time.Duration // when Done
	Estimate time.Duration // a cold build's time for this stage; 0 when unknown
	Elapsed  time.Duration // since the build started
}

// Builder builds the node image.
type Builder struct {
	// Cache is where the build keeps what it built (by version) and its
	// logs; a second build reuses it and takes seconds.
	Cache string
	// Image is the reference to produce; "" means DefaultImage.
	Image string
	// Progress is told of each stage; Log of every line the build prints.
	Progress func(Stage)
	Log      func(line string)
	// GOOS and UID are this machine's (tests replace them).
	GOOS string
	UID  int
}

// DefaultCache is the user's cache directory for node images.
func DefaultCache() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory: %w (pass --cache)", err)
	}
	return filepath.Join(d, "apimdev", "node-image"), nil
}

// RequirementError says this machine cannot build a node image, and why.
type RequirementError struct{ Problem, Fix string }

func (e *RequirementError) Error() string { return e.Problem }

// Hint is the way out.
func (e *RequirementError) Hint() string { return e.Fix }

// Check says whether this machine can build: Linux, root (debootstrap,
// chroot and mounts need it), bash and Go on PATH.
func (b *Builder) Check() error {
	goos, uid := b.GOOS, b.UID
	if goos == "" {
		goos, uid = runtime.GOOS, os.Geteuid()
	}
	if goos != "linux" {
		return &RequirementError{Problem: "building a node image needs Linux (debootstrap, chroot); this is " + goos,
			Fix: "use an offline kit made on a Linux machine (`apimdev kit create`, then `apimdev up --kit kit.tar`), or a node image you have: --node-image NAME"}
	}
	if uid != 0 {
		return &RequirementError{Problem: "building a node image needs root (debootstrap, chroot and mounts)",
			Fix: "run it as root: sudo apimdev node-image build"}
	}
	for _, tool := range []string{"bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return &RequirementError{Problem: "building a node image needs " + tool + " on PATH",
				Fix: map[string]string{"bash": "install bash", "go": "install Go 1.26 (https://go.dev/dl) and put it on PATH"}[tool]}
		}
	}
	return nil
}

// checkCache refuses, for root, a cache another user could change: what is
// built there runs as root and goes into a node image that runs privileged.
func (b *Builder) checkCache() error {
	uid := b.UID
	if b.GOOS == "" {
		uid = os.Geteuid()
	}
	if uid != 0 {
		return nil
	}
	if err := safedir.Check(b.Cache); err != nil {
		var ue *safedir.UntrustedError
		if errors.As(err, &ue) {
			return &RequirementError{Problem: "the node image cache " + ue.Error(),
				Fix: "pass --cache with a directory only root can change, e.g. --cache /var/cache/apimdev/node-image (under sudo -E, HOME and its cache are your user's)"}
		}
		return err
	}
	return nil
}

// systemBash is bash from the system's directories: root runs it, so never
// one a PATH entry of a user's could put first.
func systemBash() (string, error) {
	for _, p := range []string{"/usr/bin/bash", "/bin/bash"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &RequirementError{Problem: "building a node image needs bash in /usr/bin or /bin", Fix: "install bash"}
}

var stageRE = regexp.MustCompile(`^\[node-image [0-9:]+\] stage (\S+): (start|done in (\d+)s)$`)

// Build runs the build and returns the image reference. The scripts are
// written afresh into a private directory for this run (never read back
// from the cache, which root's build trusts only when only root can change
// it), and removed after it.
func (b *Builder) Build(ctx context.Context) (string, error) {
	if err := b.Check(); err != nil {
		return "", err
	}
	image := b.Image
	if image == "" {
		image = DefaultImage
	}
	if err := b.checkCache(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(b.Cache, 0o755); err != nil {
		return "", err
	}
	dir, remove, err := scripts.Private()
	if err != nil {
		return "", fmt.Errorf("writing the build scripts: %w", err)
	}
	defer remove()
	bash, err := systemBash()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bash, filepath.Join(dir, "e2e", "node-image.sh"))
	cmd.Env = append(os.Environ(), "APIMDEV_E2E_CACHE="+b.Cache, "APIMDEV_E2E_NODE_IMAGE="+image)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting the build: %w", err)
	}
	tail := &lastLines{n: 15}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.follow(stderr, start, tail)
	}()
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &BuildError{Err: err, Tail: tail.lines(), Log: filepath.Join(b.Cache, "logs")}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// follow reads the build's lines: stage lines become Progress, every line
// goes to Log and the tail kept for an error.
func (b *Builder) follow(r io.Reader, start time.Time, tail *lastLines) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		tail.add(line)
		if b.Log != nil {
			b.Log(line)
		}
		m := stageRE.FindStringSubmatch(line)
		if m == nil || b.Progress == nil {
			continue
		}
		st := Stage{Name: m[1], Estimate: stageEstimates[m[1]], Elapsed: time.Since(start)}
		if m[3] != "" {
			secs, _ := strconv.Atoi(m[3])
			st.Done, st.Took = true, time.Duration(secs)*time.Second
		}
		b.Progress(st)
	}
}

// BuildError says the build failed, with its last lines and where its logs are.
type BuildError struct {
	Err  error
	Tail []string
	Log  string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building the node image failed (%v); its last lines:\n  | %s", e.Err, strings.Join(e.Tail, "\n  | "))
}

func (e *BuildError) Unwrap() error { return e.Err }

// Hint says where to look.
func (e *BuildError) Hint() string {
	return "each stage's log is in " + e.Log + "; a re-run reuses every stage that finished"
}

type lastLines struct {
	mu sync.Mutex
	n  int
	ls []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ls = append(l.ls, s)
	if len(l.ls) > l.n {
		l.ls = l.ls[len(l.ls)-l.n:]
	}
}

func (l *lastLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ls...)
}

// Images is what Find needs of the engine: the images with a label.
type Images interface {
	Labelled(ctx context.Context, label string) ([]string, error)
}

// Find returns a node image these scripts built on this machine, the newest
// first as the engine lists them; ok is false when there is none.
func Find(ctx context.Context, d Images) (string, bool, error) {
	if d == nil {
		return "", false, errors.New("no Docker client")
	}
	refs, err := d.Labelled(ctx, Label)
	if err != nil || len(refs) == 0 {
		return "", false, err
	}
	return refs[0], true, nil
}
