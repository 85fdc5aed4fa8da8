package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/errdefs"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/imagepin"
	"github.com/apimdev/apimdev/internal/topology"
)

// The platform check: before any rollout, the images it would run are held
// to the architecture of the nodes that would run them, so that a node
// never meets an image it cannot pull ("no match for platform in manifest":
// the gateway's image has been published for amd64 only, and kind's nodes
// run the engine's architecture, arm64 on Apple Silicon).

// roleImage is an image a profile runs, with the setting that names it.
type roleImage struct {
	Ref     string
	Setting string // --image, prod.statsdImage, prod.collectorImage
}

// profileImages is what p runs.
func profileImages(p gateway.Profile) []roleImage {
	var out []roleImage
	for _, r := range []roleImage{{p.Image, "--image"}, {p.StatsdImage, "prod.statsdImage"}, {p.CollectorImage, "prod.collectorImage"}} {
		if r.Ref != "" {
			out = append(out, r)
		}
	}
	return out
}

// upImages is what up would deploy, as far as it is known before the
// cluster answers: what the cluster records while the settings are its,
// else the gateway of these settings.
func (s *Session) upImages() []roleImage {
	if r := s.Recorded; r != nil && r.Spec.Image != "" && sameSettings(r.Config, s.Config) {
		return profileImages(r.Spec)
	}
	return profileImages(gateway.Dev(s.Config))
}

// nodeArchs is the architectures of the nodes that would run the gateway.
type nodeArchs struct {
	// nodes lists each architecture's nodes (none for the engine's).
	nodes map[string][]string
	// engine names the engine (Docker, Podman) when the architecture is
	// its own: a cluster it makes has nodes of that architecture.
	engine string
	// context is the kubeconfig context of a cluster apimdev did not make.
	context string
}

// archs is the architectures, sorted.
func (n nodeArchs) archs() []string {
	out := make([]string, 0, len(n.nodes))
	for a := range n.nodes {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// String is the nodes' side of a check's line: "nodes are amd64".
func (n nodeArchs) String() string {
	archs := n.archs()
	if n.engine != "" {
		return fmt.Sprintf("the %s engine is %s, as a new cluster's nodes will be", n.engine, strings.Join(archs, ", "))
	}
	whose := "nodes are "
	if n.context != "" {
		whose = "the nodes of context " + n.context + " are "
	}
	if len(archs) == 1 {
		return whose + archs[0]
	}
	var parts []string
	for _, a := range archs {
		parts = append(parts, a+" ("+strings.Join(n.nodes[a], ", ")+")")
	}
	return whose + strings.Join(parts, ", ")
}

// clusterArchs reads the architectures of the nodes that run workloads (a
// tainted control plane never runs the gateway); all nodes when none does.
func clusterArchs(ctx context.Context, c kubernetes.Interface) (nodeArchs, error) {
	list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nodeArchs{}, fmt.Errorf("reading the nodes: %w", err)
	}
	all, workload := map[string][]string{}, map[string][]string{}
	for i := range list.Items {
		n := &list.Items[i]
		a := n.Status.NodeInfo.Architecture
		if a == "" {
			continue
		}
		all[a] = append(all[a], n.Name)
		if topology.RunsWorkloads(n) {
			workload[a] = append(workload[a], n.Name)
		}
	}
	if len(workload) == 0 {
		workload = all
	}
	if len(workload) == 0 {
		return nodeArchs{}, errors.New("no node says its architecture")
	}
	for _, names := range workload {
		sort.Strings(names)
	}
	return nodeArchs{nodes: workload}, nil
}

// engineArchs is the engine's architecture as its Info names it (x86_64,
// aarch64), which a cluster it makes has.
func engineArchs(raw, engine string) (nodeArchs, error) {
	a := archName(raw)
	if a == "" {
		return nodeArchs{}, fmt.Errorf("%s does not say its architecture", engine)
	}
	return nodeArchs{nodes: map[string][]string{a: nil}, engine: engine}, nil
}

// archName is the Go (and Kubernetes) name of an architecture as engines
// and uname name it.
func archName(a string) string {
	switch a = strings.ToLower(a); a {
	case "x86_64", "x86-64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "armv8", "armv8l":
		return "arm64"
	case "armv7l", "armv7", "armv6l", "armhf", "arm":
		return "arm"
	case "i386", "i686", "x86", "386":
		return "386"
	}
	return a
}

// sessionArchs is the architectures of the connected cluster's nodes, or,
// on the local cluster when its nodes do not say, the engine's.
func (s *Session) sessionArchs(ctx context.Context, kctx string) (nodeArchs, error) {
	if s.Client == nil {
		return nodeArchs{}, errors.New("not connected to the cluster")
	}
	n, err := clusterArchs(ctx, s.Client)
	if err == nil {
		n.context = kctx
		return n, nil
	}
	if !s.localCluster {
		return nodeArchs{}, fmt.Errorf("context %s: %w", kctx, err)
	}
	if e, eerr := s.engineArchsNow(ctx); eerr == nil {
		return e, nil
	}
	return nodeArchs{}, err
}

// engineArchsNow asks the engine for its architecture.
func (s *Session) engineArchsNow(ctx context.Context) (nodeArchs, error) {
	if s.Docker == nil {
		return nodeArchs{}, errors.New("no engine client")
	}
	info, err := s.Docker.Info(ctx)
	if err != nil {
		return nodeArchs{}, err
	}
	return engineArchs(info.Architecture, s.Endpoint.Runs().Title())
}

// platformLookup is one image's platforms, or why they are not known.
type platformLookup struct {
	image roleImage
	found imagepin.ImagePlatforms
	err   error
}

// lookupPlatforms reads every image's platforms at once.
func (s *Session) lookupPlatforms(ctx context.Context, images []roleImage) []platformLookup {
	out := make([]platformLookup, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found, err := s.Pin.PlatformsOf(ctx, img.Ref)
			out[i] = platformLookup{image: img, found: found, err: err}
		}()
	}
	wg.Wait()
	return out
}

// platformVerdict is images held to the nodes: what each one has, what
// could not be read, and the mismatches as an error.
type platformVerdict struct {
	has     []string // "IMAGE has linux/amd64"
	unknown []string // "could not check IMAGE's platforms: why"
	checked []string // the images not found wanting (known fine, or unknown)
	err     error    // a *PlatformError
}

// judgePlatforms holds what was looked up to the nodes' architectures.
func judgePlatforms(looked []platformLookup, nodes nodeArchs) platformVerdict {
	var v platformVerdict
	var missing []MissingPlatform
	for _, l := range looked {
		if l.err != nil {
			v.unknown = append(v.unknown, fmt.Sprintf("could not check %s's platforms (%s), so it was not held to the nodes' architecture", l.image.Ref, oneLine(l.err)))
			v.checked = append(v.checked, l.image.Ref)
			continue
		}
		var lacks []string
		for _, a := range nodes.archs() {
			if !l.found.Has(a) {
				lacks = append(lacks, a)
			}
		}
		if len(lacks) > 0 {
			missing = append(missing, MissingPlatform{Image: l.image.Ref, Setting: l.image.Setting, Has: l.found.Platforms, From: l.found.From, Lacks: lacks})
			continue
		}
		v.has = append(v.has, l.image.Ref+" has "+platformList(l.found, nodes.archs()))
		v.checked = append(v.checked, l.image.Ref)
	}
	if len(missing) > 0 {
		v.err = &PlatformError{Missing: missing, nodes: nodes}
	}
	return v
}

// platformList names an image's platforms; of a long list, those the nodes
// run and how many more there are.
func platformList(ip imagepin.ImagePlatforms, archs []string) string {
	names := make([]string, 0, len(ip.Platforms))
	var fit []string
	for _, p := range ip.Platforms {
		names = append(names, p.String())
		if slices.ContainsFunc(archs, p.Runs) && !slices.Contains(fit, p.String()) {
			fit = append(fit, p.String())
		}
	}
	s := strings.Join(names, ", ")
	if len(names) > 3 {
		s = fmt.Sprintf("%s (and %d other platforms)", strings.Join(fit, ", "), len(names)-len(fit))
	}
	if ip.From == imagepin.FromLocal {
		s += " (the local image)"
	}
	return s
}

// requirePlatforms refuses images the nodes of the connected cluster (kctx
// names a context apimdev did not make) cannot run, before anything is
// loaded or applied; images in skip were checked already. What cannot be
// known is told to warn and does not block.
func (s *Session) requirePlatforms(ctx context.Context, images []roleImage, kctx string, skip []string, warn func(string)) error {
	images = slices.DeleteFunc(slices.Clone(images), func(r roleImage) bool { return slices.Contains(skip, r.Ref) })
	if len(images) == 0 {
		return nil
	}
	nodes, err := s.sessionArchs(ctx, kctx)
	if err != nil {
		warn("could not check the images' platforms: " + oneLine(err))
		return nil
	}
	v := judgePlatforms(s.lookupPlatforms(ctx, images), nodes)
	for _, u := range v.unknown {
		warn(u)
	}
	return v.err
}

// platformPreflight is preflight's platform check of images: against the
// existing cluster's nodes when they answer, else the engine's architecture
// (which a new cluster's nodes have). checked, when set, is given the images
// the check did not find wanting, once it has run.
func (s *Session) platformPreflight(images []roleImage, recreate bool, checked *[]string) func(context.Context, cluster.PlatformInputs) cluster.Check {
	return func(ctx context.Context, in cluster.PlatformInputs) cluster.Check {
		looked := s.lookupPlatforms(ctx, images)
		nodes, err := s.preflightArchs(ctx, in, recreate)
		if err != nil {
			return cluster.Check{OK: true, Warn: true, Detail: "could not check the images' platforms: " + oneLine(err)}
		}
		v := judgePlatforms(looked, nodes)
		if checked != nil {
			*checked = v.checked
		}
		switch {
		case v.err != nil:
			return cluster.Check{Problem: v.err.Error(), Fix: events.HintOf(v.err)}
		case len(v.unknown) > 0 && len(v.has) > 0:
			return cluster.Check{OK: true, Warn: true, Detail: strings.Join(append(v.unknown, v.has...), "; ") + "; " + nodes.String()}
		case len(v.unknown) > 0:
			return cluster.Check{OK: true, Warn: true, Detail: strings.Join(v.unknown, "; ")}
		}
		return cluster.Check{OK: true, Detail: strings.Join(v.has, "; ") + "; " + nodes.String()}
	}
}

// preflightArchs is the nodes' architectures for preflight: the existing
// cluster's through its API, when it answers; otherwise the engine's.
func (s *Session) preflightArchs(ctx context.Context, in cluster.PlatformInputs, recreate bool) (nodeArchs, error) {
	switch st := in.Cluster(); {
	case st == cluster.ClusterUnknown:
		return nodeArchs{}, errors.New("the cluster's state is unknown")
	case !recreate && (st == cluster.ClusterOurs || st == cluster.ClusterStarting || st == cluster.ClusterStopped):
		if c := s.preflightClient(); c != nil {
			nctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			n, err := clusterArchs(nctx, c)
			cancel()
			if err == nil {
				return n, nil
			}
		}
	}
	raw, err := in.EngineArch(ctx)
	if err != nil {
		return nodeArchs{}, err
	}
	return engineArchs(raw, s.Endpoint.Runs().Title())
}

// preflightClient is a client of the local cluster for preflight: the
// session's when it has one, else one made from the kubeconfig file and
// kept by nobody (the cluster step connects for itself, perhaps to a
// cluster made anew).
func (s *Session) preflightClient() kubernetes.Interface {
	if s.Client != nil {
		return s.Client
	}
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil
	}
	rc.Timeout = 3 * time.Second
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil
	}
	return c
}

// oneLine is an error's first line.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// Platform tells imagepin the platform of an image on this machine.
func (di dockerImages) Platform(ctx context.Context, image string) (imagepin.Platform, bool, error) {
	info, err := di.d.ImageInspect(ctx, image)
	if errdefs.IsNotFound(err) {
		return imagepin.Platform{}, false, nil
	}
	if err != nil {
		return imagepin.Platform{}, false, err
	}
	return imagepin.Platform{OS: info.Os, Architecture: info.Architecture, Variant: info.Variant}, true, nil
}

// MissingPlatform is an image without a build for some of the nodes.
type MissingPlatform struct {
	Image   string
	Setting string // what names it: --image, prod.statsdImage, prod.collectorImage
	Has     []imagepin.Platform
	From    string   // where the platforms were read
	Lacks   []string // the nodes' architectures it has no build for
}

// PlatformError says images are not built for the architecture of the
// nodes that would run them: a node's pull would fail with "no match for
// platform in manifest".
type PlatformError struct {
	Missing []MissingPlatform
	nodes   nodeArchs
}

func (e *PlatformError) Error() string {
	var parts []string
	for _, m := range e.Missing {
		has := make([]string, 0, len(m.Has))
		for _, p := range m.Has {
			has = append(has, p.String())
		}
		what := "is built for " + strings.Join(has, ", ") + " only"
		if m.From == imagepin.FromLocal {
			what = "on this machine is " + strings.Join(has, ", ")
		}
		parts = append(parts, fmt.Sprintf("%s %s, not linux/%s", m.Image, what, strings.Join(m.Lacks, " or linux/")))
	}
	return strings.Join(parts, "; ") + "; " + e.nodes.String() + ": a node cannot run it (its pull fails with \"no match for platform in manifest\")"
}

// Hint names the ways out: a tag (or image) built for the nodes'
// architecture, and for the local cluster the demo or an engine of the
// image's architecture; for another cluster, nodes of it.
func (e *PlatformError) Hint() string {
	var ways []string
	var archs []string // what the images are built for
	for _, m := range e.Missing {
		use := "pass it with " + m.Setting
		if m.Setting != "--image" {
			use = "set " + m.Setting + " in apimdev.yaml"
		}
		w := fmt.Sprintf("use a tag of %s built for linux/%s if there is one (`docker manifest inspect %s` lists an image's platforms), or another image that is, and %s",
			gateway.Repo(m.Image), strings.Join(m.Lacks, " and linux/"), m.Image, use)
		if gateway.Repo(m.Image) == gateway.Repo(config.DefaultImage) {
			w += " (an arm64 build of the gateway is awaited in github.com/Azure/api-management-self-hosted-gateway/issues/192)"
		}
		ways = append(ways, w)
		for _, p := range m.Has {
			if p.OS == "linux" && !slices.Contains(archs, p.Architecture) {
				archs = append(archs, p.Architecture)
			}
		}
	}
	if e.nodes.context != "" {
		return strings.Join(append(ways, "or give the cluster nodes of "+strings.Join(archs, " or ")+" (a node pool of that architecture)"), "; ")
	}
	ways = append(ways, "or try the demo, `apimdev up --demo` (its stand-in images are built for this machine; no Azure needed)")
	if slices.Contains(archs, "amd64") {
		ways = append(ways, "or run apimdev on an amd64 engine: an x86_64 machine, or an emulated one such as `colima start --arch x86_64` (slow)")
	}
	return strings.Join(ways, "; ")
}
