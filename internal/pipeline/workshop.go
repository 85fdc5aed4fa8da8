package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/errdefs"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/token"
)

// Workshop is what `up --kit` and `up --demo` add to a plain up: a kit's
// images loaded first, the demo's stand-in configuration service and token.
// A nil *Workshop is a plain up: every method is safe on it.
type Workshop struct {
	KitPath  string
	Manifest *kit.Manifest
	// Kit is the kit, opened and verified (signature, configuration,
	// checksums) before anything touched the engine; the kit step loads it.
	// When it is nil (the wizard), the kit step opens and verifies KitPath
	// itself, trusting the keys of APIMDEV_KIT_TRUST.
	Kit  *kit.Kit
	Demo bool
	// Key is the demo's subscription key for its echo API, once the demo
	// step has run: what up prints at the end.
	Key string
}

func (w *Workshop) hasKit() bool { return w != nil && w.KitPath != "" }
func (w *Workshop) demo() bool   { return w != nil && w.Demo }

// IsDemo says the run is the demo's.
func (w *Workshop) IsDemo() bool { return w.demo() }

// KitImage is the kit's image of a role, if the kit has one.
func (w *Workshop) KitImage(role string) (kit.Image, bool) {
	if w == nil || w.Manifest == nil {
		return kit.Image{}, false
	}
	return w.Manifest.Image(role)
}

// DemoImage is the stand-in image the demo runs: the one the user asked
// for (a flag, APIMDEV_IMAGE, the config file or the wizard's form) when it
// is a stand-in image, else the kit's, else the default. The CLI and the
// wizard both choose with it.
func (w *Workshop) DemoImage(asked string) string {
	if demo.IsStandinImage(asked) {
		return asked
	}
	if ki, ok := w.KitImage(kit.RoleDemo); ok {
		return ki.Ref
	}
	return demo.DefaultImage
}

// Configure fills in what the kit brings where the user set nothing.
func (w *Workshop) Configure(cfg *config.Config, imageSet bool) {
	if w == nil {
		return
	}
	if ki, ok := w.KitImage(kit.RoleNode); ok && cfg.Cluster.NodeImage == "" {
		cfg.Cluster.NodeImage = ki.Ref
	}
	if ki, ok := w.KitImage(kit.RoleGateway); ok && !w.Demo && !imageSet && cfg.Gateway.Image == config.DefaultImage {
		cfg.Gateway.Image = ki.Ref
	}
	if ki, ok := w.KitImage(kit.RoleStatsd); ok && cfg.Prod.StatsdImage == config.DefaultStatsdImage {
		cfg.Prod.StatsdImage = ki.Ref
	}
	if w.Demo {
		// The demo's token is minted, never read from a file: remember none.
		cfg.Gateway.TokenFile = ""
	}
}

func (w *Workshop) loadKit(ctx context.Context, d cluster.Docker, progress func(string, ...any)) (string, error) {
	k := w.Kit
	if k == nil {
		fps, err := kit.ParseTrust(strings.Split(os.Getenv(KitTrustEnv), ","))
		if err != nil {
			return "", err
		}
		if k, err = kit.Open(ctx, w.KitPath, kit.Trust{Fingerprints: fps}, progress); err != nil {
			return "", err
		}
		defer k.Close()
	}
	res, err := k.Load(ctx, d, progress)
	if err != nil {
		return "", err
	}
	return res.String(), nil
}

// KitTrustEnv names the variable of the kit signers' keys trusted besides
// --trust: fingerprints, public keys or .pub files, comma-separated.
const KitTrustEnv = "APIMDEV_KIT_TRUST"

// Close closes the workshop's kit, if it opened one.
func (w *Workshop) Close() {
	if w != nil && w.Kit != nil {
		w.Kit.Close()
	}
}

// checkDemoImage stops a demo before anything is created when the stand-in
// image is nowhere to be found: nothing is ever pulled for the demo.
func (w *Workshop) checkDemoImage(ctx context.Context, d cluster.Docker, image string, wait time.Duration) error {
	if !w.demo() || d == nil {
		return nil
	}
	if ki, ok := w.KitImage(kit.RoleDemo); ok && ki.Ref == image {
		return nil // the kit step loads it
	}
	ictx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := d.ImageInspect(ictx, image); !errdefs.IsNotFound(err) {
		return nil // here; or Docker down: preflight says so, with its fix
	}
	// A release archive carries the stand-in's Linux program next to
	// apimdev: the image is made from it, here.
	bin := standinBinary()
	if bin == "" {
		return &demo.ImageError{Image: image, Reason: "not on this machine", Message: "the demo never pulls it"}
	}
	return loadDemoImage(ctx, d, bin, image)
}

// standinBinary is the stand-in gateway's program: APIMDEV_STANDIN_BINARY,
// else next to this apimdev (a release archive, Scoop), else in its
// ../libexec (Homebrew); "" when there is none.
func standinBinary() string {
	if p := os.Getenv("APIMDEV_STANDIN_BINARY"); p != "" {
		return p
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dirs := []string{filepath.Dir(exe)}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		for _, p := range []string{filepath.Join(d, demo.BinaryName), filepath.Join(d, "..", "libexec", demo.BinaryName)} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// loadDemoImage makes the demo's image from the stand-in's program and
// loads it into the engine.
func loadDemoImage(ctx context.Context, d cluster.Docker, bin, image string) error {
	return loadProgramImage(ctx, d, programImage{bin: bin, image: image, what: "the demo image", program: "the stand-in gateway's program", write: demo.WriteImage})
}

// programImage is an image apimdev makes from a Linux program on this
// machine (the demo's stand-in, the relay from apimdev itself).
type programImage struct {
	bin, image    string
	what, program string
	write         func(w io.Writer, binary []byte, ref string) error
}

// loadProgramImage makes the image from its program and loads it into the
// engine, checking the program fits the engine's architecture.
func loadProgramImage(ctx context.Context, d cluster.Docker, p programImage) error {
	b, err := os.ReadFile(p.bin)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.program, err)
	}
	arch, err := demo.Arch(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p.bin, err)
	}
	if info, err := d.Info(ctx); err == nil && info.Architecture != "" && archName(info.Architecture) != arch {
		return fmt.Errorf("%s is for linux/%s but the Docker engine runs linux/%s: take the release archive for your machine's architecture", p.bin, arch, archName(info.Architecture))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(p.write(pw, b, p.image)) }()
	resp, err := d.ImageLoad(ctx, pr)
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("loading %s made from %s: %w", p.what, p.bin, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := d.ImageInspect(ctx, p.image); err != nil {
		return fmt.Errorf("%s made from %s did not load: %w", p.what, p.bin, err)
	}
	return nil
}

// deployDemo returns the demo's gateway token and puts its stand-in
// configuration service into the cluster: a cluster that already runs this
// demo keeps its keys and (while it is good) its token, so a re-run changes
// nothing.
func (w *Workshop) deployDemo(ctx context.Context, s *Session) (token.Token, string, error) {
	cfg := s.Config
	existing, keys := "", demo.Keys{}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := demo.Read(rctx, s.Client)
	if err == nil && st.Found {
		keys = st.Keys
		if sec, err := s.Client.CoreV1().Secrets(s.Names.Namespace).Get(rctx, s.Names.SecretName(), metav1.GetOptions{}); err == nil {
			existing = string(sec.Data["value"])
		}
	}
	cancel()
	if keys.Signing == "" {
		if keys, err = demo.NewKeys(nil); err != nil {
			return token.Token{}, "", err
		}
	}
	tok, _, err := keys.Token(cfg.Gateway.Name, existing, s.now())
	if err != nil {
		return token.Token{}, "", err
	}
	w.Key = keys.Subscription
	s.ExtraSmoke = demo.SmokeCalls(keys.Subscription)
	setup := &demo.Setup{Keys: keys, Image: cfg.Gateway.Image, GatewayID: cfg.Gateway.Name, TokenSHA256: demo.TokenSHA256(tok.SecretValue())}
	what, err := setup.DeployDemo(ctx, s.Client, s.progress)
	return tok, what, err
}

// addDemoSmoke adds the demo's echo calls to a smoke run against a demo,
// reading the subscription key from the cluster.
func (s *Session) addDemoSmoke(ctx context.Context) {
	if !s.IsDemo() || s.Client == nil {
		return
	}
	if st, err := demo.Read(ctx, s.Client); err == nil && st.Found {
		s.ExtraSmoke = demo.SmokeCalls(st.Keys.Subscription)
	}
}

// DemoState reads the demo's keys back from the cluster.
func (s *Session) DemoState(ctx context.Context) (demo.State, error) {
	if err := s.Connect(); err != nil {
		return demo.State{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := demo.Read(ctx, s.Client)
	if err != nil {
		return st, err
	}
	if !st.Found {
		return st, &NoDemoError{Cluster: s.Config.Cluster.Name}
	}
	return st, nil
}

// NoDemoError says the cluster runs no demo.
type NoDemoError struct{ Cluster string }

func (e *NoDemoError) Error() string { return fmt.Sprintf("cluster %q runs no demo", e.Cluster) }

// Hint says how to start one.
func (e *NoDemoError) Hint() string { return "start one with `apimdev up --demo --detach`" }

// DemoRefusal keeps the demo where it belongs: the stand-in is never
// promoted to a real cluster.
type DemoRefusal struct{ Cluster string }

func (e *DemoRefusal) Error() string {
	return fmt.Sprintf("cluster %q runs the demo (%s): promote --context never carries it to a real cluster", e.Cluster, demo.Label)
}

// Hint says how to get a real gateway to promote.
func (e *DemoRefusal) Hint() string {
	return "`apimdev promote --yes` (no --context) promotes the demo on the local cluster; for a real cluster, run `apimdev down` and `apimdev up` with your gateway's token first"
}

// KitPlan decides a kit's images and the configuration it carries: the
// node image, the gateway image pinned from the local image's tags (a kit
// never holds a floating tag), the statsd exporter, and with withDemo the
// stand-in. imageSet says the user named the gateway image.
func KitPlan(ctx context.Context, d cluster.Docker, cfg config.Config, withDemo, imageSet bool) ([]kit.Want, config.Config, []string, error) {
	var notes []string
	node := cfg.Cluster.NodeImage
	if node == "" {
		node = cluster.DefaultNodeImage
	}
	want := []kit.Want{{Role: kit.RoleNode, Ref: node}}
	gw := cfg.Gateway.Image
	demoRef := ""
	if withDemo {
		demoRef = demo.DefaultImage
	}
	switch {
	case demo.IsStandinImage(gw):
		// The stand-in is the demo's image, whatever --demo says.
		demoRef, gw = gw, ""
	case withDemo && !imageSet && gw == config.DefaultImage:
		notes = append(notes, "no --image: the kit holds only the demo's stand-in gateway, so attendees can run `up --demo` but not their own gateway; add --image "+gateway.Repo(config.DefaultImage)+":<version> to include it")
		gw = ""
	default:
		pinned, err := pinLocal(ctx, d, gw)
		if err != nil {
			return nil, cfg, nil, err
		}
		gw = pinned
	}
	if gw != "" {
		want = append(want, kit.Want{Role: kit.RoleGateway, Ref: gw})
		cfg.Gateway.Image = gw
	} else {
		// The stand-in is never a kit's gateway: `up --demo` picks it from
		// the manifest, and a real gateway keeps the default image.
		cfg.Gateway.Image = config.DefaultImage
	}
	want = append(want, kit.Want{Role: kit.RoleStatsd, Ref: cfg.Prod.StatsdImage})
	if demoRef != "" {
		want = append(want, kit.Want{Role: kit.RoleDemo, Ref: demoRef})
	}
	// What travels: settings, never a token, never this machine's paths.
	cfg.Cluster.NodeImage = node
	cfg.Output = ""
	yb, dropped, err := kit.KitConfig(cfg)
	if err != nil {
		return nil, cfg, nil, err
	}
	for _, r := range dropped {
		notes = append(notes, fmt.Sprintf("%s names a file on this machine (or writes into yours): left out of the kit; attendees give their own with %s", r.Key, r.Flag))
	}
	out, err := config.Decode(kit.ConfigFile, bytes.NewReader(yb), config.Config{})
	return want, out, notes, err
}

// pinLocal turns a floating tag into the pinned tag of the same local image.
func pinLocal(ctx context.Context, d cluster.Docker, ref string) (string, error) {
	if gateway.Pinned(ref) {
		return ref, nil
	}
	if d != nil {
		if info, err := d.ImageInspect(ctx, ref); err == nil {
			for _, t := range info.RepoTags {
				if gateway.Repo(t) == gateway.Repo(ref) && gateway.Pinned(t) {
					return t, nil
				}
			}
		}
	}
	return "", &KitPinError{Ref: ref}
}

// KitPinError says a kit's gateway image has a floating tag nothing pins.
type KitPinError struct{ Ref string }

func (e *KitPinError) Error() string {
	return fmt.Sprintf("the gateway image %s has a floating tag and no local image says which version it is: a kit pins it; pass --image %s:<major.minor.patch> (pull it first)", e.Ref, gateway.Repo(e.Ref))
}

// Engine is the container runtime's API for cfg's cluster (Docker, or
// Podman's Docker-compatible API), chosen as a session chooses it, for the
// commands that need only it (kit create and load).
func Engine(ctx context.Context, cfg config.Config, getenv func(string) string) (cluster.Docker, error) {
	choice, err := chooseRuntime(ctx, cfg, clusterFiles(cfg, getenv))
	if err != nil {
		return nil, err
	}
	d, err := cluster.NewDockerAt(choice.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", choice.Endpoint.Runs().CLI(), err)
	}
	return d, nil
}
