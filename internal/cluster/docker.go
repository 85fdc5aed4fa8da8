package cluster

import (
	"context"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// Docker is the part of the Docker Engine API apimdev uses.
type Docker interface {
	Ping(ctx context.Context) (types.Ping, error)
	ServerVersion(ctx context.Context) (types.Version, error)
	Info(ctx context.Context) (system.Info, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	ImageTag(ctx context.Context, source, target string) error
	ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error)
	ImageList(ctx context.Context, opts image.ListOptions) ([]image.Summary, error)
	ImageRemove(ctx context.Context, ref string, opts image.RemoveOptions) ([]image.DeleteResponse, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerStart(ctx context.Context, id string, opts container.StartOptions) error
	ContainerKill(ctx context.Context, id, signal string) error
	// ContainerPause and ContainerUnpause freeze and thaw a container's
	// processes (the cgroup freezer); Podman's compatible API has both.
	ContainerPause(ctx context.Context, id string) error
	ContainerUnpause(ctx context.Context, id string) error
}

var _ Docker = (*client.Client)(nil)

// NewDocker connects to the engine the docker CLI would (see FindDocker),
// negotiating the API version so an older engine (Debian's 20.10) works.
func NewDocker() (*client.Client, error) { return NewDockerAt(LocalEndpoint()) }

// NewDockerAt connects to the engine at ep (TLS settings from DOCKER_*).
func NewDockerAt(ep Endpoint) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if ep.Host != "" {
		opts = append(opts, client.WithHost(ep.Host))
	}
	return client.NewClientWithOpts(opts...)
}

// ProbeEngine is the Probe of a real engine: ping, then the version, whose
// components name the Podman Engine when Podman serves the socket.
func ProbeEngine(ctx context.Context, ep Endpoint) (answers, podman bool) {
	d, err := NewDockerAt(ep)
	if err != nil {
		return false, false
	}
	defer d.Close()
	if _, err := d.Ping(ctx); err != nil {
		return false, false
	}
	v, err := d.ServerVersion(ctx)
	if err != nil {
		return true, false
	}
	return true, IsPodman(v)
}

// IsPodman says whether a version answer is Podman's: its compatible API
// names the "Podman Engine" among the components.
func IsPodman(v types.Version) bool {
	for _, c := range v.Components {
		if strings.Contains(strings.ToLower(c.Name), "podman") {
			return true
		}
	}
	return strings.Contains(strings.ToLower(v.Platform.Name), "podman")
}

// LocalEndpoint is FindDocker for this process: its environment, OS and
// home directory.
func LocalEndpoint() Endpoint {
	home, _ := os.UserHomeDir()
	return FindDocker(os.Getenv, runtime.GOOS, home, fileExists)
}

// Kind is the part of kind's Provider apimdev uses.
type Kind interface {
	List() ([]string, error)
	ListNodes(name string) ([]nodes.Node, error)
	Create(name string, opts ...cluster.CreateOption) error
	Delete(name, kubeconfigPath string) error
	KubeConfig(name string, internal bool) (string, error)
}

var _ Kind = (*cluster.Provider)(nil)
