package enginefake

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

// signals are the exit codes a container killed by a signal gets (128 +
// the signal's number).
var signals = map[string]int{"KILL": 137, "TERM": 143, "INT": 130, "HUP": 129, "QUIT": 131}

// AddContainer puts a container named name on the engine in state
// (Running, Exited or Paused) and returns its ID.
func (e *Engine) AddContainer(name, state string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := sum([]byte("container " + name))
	e.containers = append(e.containers, &ctr{id: id, name: name, state: state})
	return id
}

// ContainerState is the state of the container with that name or ID.
func (e *Engine) ContainerState(nameOrID string) (state string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.container(nameOrID); c != nil {
		return c.state, true
	}
	return "", false
}

// container finds a container by name (with or without its leading /),
// ID or a prefix of the ID of at least 12; the caller holds the lock.
func (e *Engine) container(nameOrID string) *ctr {
	name := strings.TrimPrefix(nameOrID, "/")
	for _, c := range e.containers {
		if c.name == name || c.id == nameOrID || len(nameOrID) >= 12 && strings.HasPrefix(c.id, nameOrID) {
			return c
		}
	}
	return nil
}

func noSuchContainer(id string) error {
	return errdefs.NotFound(errors.New("Error response from daemon: No such container: " + id))
}

// ContainerInspect answers with the container's ID, name and state.
func (e *Engine) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("container-inspect %s", id)
	c := e.container(id)
	if c == nil {
		return container.InspectResponse{}, noSuchContainer(id)
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
		ID: c.id, Name: "/" + c.name,
		State: &container.State{Status: c.state, Running: c.state == Running || c.state == Paused, Paused: c.state == Paused, ExitCode: c.exitCode},
	}}, nil
}

// ContainerStart starts an exited container; a running one is left as it
// is (the engine answers "not modified"), a paused one is a conflict.
func (e *Engine) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("start %s", id)
	c := e.container(id)
	switch {
	case c == nil:
		return noSuchContainer(id)
	case c.state == Paused:
		return errdefs.Conflict(errors.New("Error response from daemon: cannot start a paused container, try unpause instead"))
	}
	c.state, c.exitCode = Running, 0
	return nil
}

// ContainerKill stops a running or paused container with signal (KILL
// when ""), its exit code 128 plus the signal's number; a container that
// is not running is a conflict.
func (e *Engine) ContainerKill(_ context.Context, id, signal string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("kill %s %s", id, signal)
	c := e.container(id)
	if c == nil {
		return noSuchContainer(id)
	}
	if c.state != Running && c.state != Paused {
		return errdefs.Conflict(fmt.Errorf("Error response from daemon: cannot kill container: %s: container %s is not running", id, c.id))
	}
	sig := strings.TrimPrefix(strings.ToUpper(signal), "SIG")
	code, ok := signals[cmpOr(sig, "KILL")]
	if !ok {
		return errdefs.InvalidParameter(fmt.Errorf("Error response from daemon: invalid signal: %s", signal))
	}
	c.state, c.exitCode = Exited, code
	return nil
}

// ContainerPause freezes a running container; one that does not run, or
// is paused already, is a conflict (as the engine says).
func (e *Engine) ContainerPause(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("pause %s", id)
	c := e.container(id)
	switch {
	case c == nil:
		return noSuchContainer(id)
	case c.state == Paused:
		return errdefs.Conflict(fmt.Errorf("Error response from daemon: container %s is already paused", c.id))
	case c.state != Running:
		return errdefs.Conflict(fmt.Errorf("Error response from daemon: container %s is not running", c.id))
	}
	c.state = Paused
	return nil
}

// ContainerUnpause thaws a paused container; one that is not paused is a
// conflict.
func (e *Engine) ContainerUnpause(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("unpause %s", id)
	c := e.container(id)
	switch {
	case c == nil:
		return noSuchContainer(id)
	case c.state != Paused:
		return errdefs.Conflict(fmt.Errorf("Error response from daemon: container %s is not paused", c.id))
	}
	c.state = Running
	return nil
}
