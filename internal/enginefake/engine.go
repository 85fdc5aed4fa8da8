package enginefake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"
)

// Container states, as the engine names them.
const (
	Running = "running"
	Exited  = "exited"
	Paused  = "paused"
)

// DownError is what an engine that does not answer gives, as the Docker
// client says it.
const DownError = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

// img is one image: the archive it came in, its labels and platform.
type img struct {
	archive  []byte
	labels   map[string]string
	created  int64
	os, arch string
}

type ctr struct {
	id, name, state string
	exitCode        int
}

// Engine is a fake Docker Engine. The zero value is not usable: call New.
type Engine struct {
	mu         sync.Mutex
	tags       map[string]string // name -> image ID
	images     map[string]*img   // image ID -> image
	containers []*ctr
	created    int64

	down    bool
	version types.Version
	info    system.Info
	idOf    func(archive []byte) string
	// failLoad is the message a load of the archive naming ref fails
	// with, after the name moved (as an engine that fails part-way).
	failLoad map[string]string

	calls  []string
	loaded int
}

// New is an engine that answers (Docker 28 on linux/amd64, 4 CPUs, 8 GiB,
// runc) and holds nothing.
func New() *Engine {
	return &Engine{
		tags: map[string]string{}, images: map[string]*img{}, failLoad: map[string]string{}, idOf: ContentID,
		version: types.Version{Version: "28.0 (fake)", APIVersion: "1.47", Os: "linux", Arch: "amd64"},
		info:    system.Info{NCPU: 4, MemTotal: 8 << 30, OSType: "linux", Architecture: "x86_64", DefaultRuntime: "runc"},
	}
}

// record notes a call; the caller holds the lock.
func (e *Engine) record(format string, args ...any) {
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
}

// Calls are the calls the engine got, in order, one line each: the
// method's short name ("ping", "inspect REF", "save REF", "load", "tag SRC
// DST", "pull REF", "list", "rmi REF", "container-inspect ID", "start ID",
// "kill ID SIGNAL", "pause ID", "unpause ID", "version", "info").
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// CallCount is how many calls the engine got.
func (e *Engine) CallCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

// Count is how many calls the engine got whose line's first word is verb.
func (e *Engine) Count(verb string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if first, _, _ := strings.Cut(c, " "); first == verb {
			n++
		}
	}
	return n
}

// Loaded is how many loads named an image (whether or not they then
// failed).
func (e *Engine) Loaded() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loaded
}

// SetDown makes the engine stop answering (ping, version and info fail),
// or answer again.
func (e *Engine) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// SetVersion changes the version answer (an OS/arch, Podman's
// components...).
func (e *Engine) SetVersion(f func(*types.Version)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.version)
}

// SetInfo changes the info answer (the architecture as `uname -m` says it,
// the runtime's name...).
func (e *Engine) SetInfo(f func(*system.Info)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.info)
}

// SetIDOf makes the engine name the images it loads by f of their archive
// instead of by ContentID, as an engine with another image store does.
func (e *Engine) SetIDOf(f func(archive []byte) string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.idOf = f
}

// FailLoad makes a load of the archive naming ref fail with msg in its
// stream, after the name moved to the loaded image; "" loads it again.
func (e *Engine) FailLoad(ref, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if msg == "" {
		delete(e.failLoad, ref)
		return
	}
	e.failLoad[ref] = msg
}

func (e *Engine) downErr() error {
	if e.down {
		return errors.New(DownError)
	}
	return nil
}

// Ping answers unless the engine is down.
func (e *Engine) Ping(context.Context) (types.Ping, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("ping")
	if err := e.downErr(); err != nil {
		return types.Ping{}, err
	}
	return types.Ping{APIVersion: e.version.APIVersion, OSType: e.version.Os}, nil
}

// ServerVersion is the version answer unless the engine is down.
func (e *Engine) ServerVersion(context.Context) (types.Version, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("version")
	if err := e.downErr(); err != nil {
		return types.Version{}, err
	}
	v := e.version
	v.Components = slices.Clone(v.Components)
	return v, nil
}

// Info is the info answer, with the images' and containers' counts,
// unless the engine is down.
func (e *Engine) Info(context.Context) (system.Info, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("info")
	if err := e.downErr(); err != nil {
		return system.Info{}, err
	}
	i := e.info
	i.Images, i.Containers = len(e.images), len(e.containers)
	i.ContainersRunning, i.ContainersPaused, i.ContainersStopped = 0, 0, 0
	for _, c := range e.containers {
		switch c.state {
		case Running:
			i.ContainersRunning++
		case Paused:
			i.ContainersPaused++
		default:
			i.ContainersStopped++
		}
	}
	return i, nil
}
