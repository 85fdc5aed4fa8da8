package tui

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	files "github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// Runner is the pipeline as the wizard drives it. PipelineRunner is the real
// one; tests use a fake so they need no Docker.
type Runner interface {
	// Up runs the `up` pipeline, reporting every step to rep. Calling it
	// again after a failure is a retry from the failed step: every step
	// reuses what exists. A forward left by the previous call is stopped
	// first.
	Up(ctx context.Context, req UpRequest, rep *events.Reporter) (*pipeline.UpResult, error)
	// Smoke runs the smoke calls again through the forward Up started.
	Smoke(ctx context.Context) ([]smoke.Result, error)
	// Where says where the gateway lives, for the result view.
	Where() Where
	// Exists describes what exists now, for an interrupted or failed run.
	Exists(ctx context.Context) string
	// Close stops the forward and releases the cluster lock.
	Close()
}

// UpRequest is one run of the pipeline.
type UpRequest struct {
	Config config.Config
	Token  token.Token
}

// Where names the cluster and the gateway's place in it.
type Where struct {
	Cluster    string
	Kubeconfig string
	Namespace  string
}

// PipelineRunner runs internal/pipeline for the wizard. It holds the
// cluster lock from the first Up until Close, and keeps the in-process
// forward of the last successful Up running until the next Up or Close.
type PipelineRunner struct {
	Getenv        func(string) string
	Version       string
	Self          string        // this executable, for a detached forward
	ConfigFile    string        // --config, for a detached forward
	DeployTimeout time.Duration // how long deploy waits for ready pods
	LockWait      time.Duration // how long to wait for another apimdev; 0 means 2s

	mu      sync.Mutex
	session *pipeline.Session
	lock    *files.Lock
	lockFor string
	res     *pipeline.UpResult
	stop    func() // the in-process forward of the last Up, if any
	tok     token.Token
}

var _ Runner = (*PipelineRunner)(nil)

// Up implements Runner.
func (r *PipelineRunner) Up(ctx context.Context, req UpRequest, rep *events.Reporter) (*pipeline.UpResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopForward()
	if r.session == nil || !reflect.DeepEqual(r.session.Config, req.Config) {
		s, err := pipeline.NewSession(req.Config, rep, r.Getenv, r.Version)
		if err != nil {
			return nil, err
		}
		r.session = s
	}
	if r.lock == nil || r.lockFor != req.Config.Cluster.Name {
		r.lock.Release()
		r.lock = nil
		wait := r.LockWait
		if wait == 0 {
			wait = 2 * time.Second
		}
		lock, err := r.session.Files.Acquire(req.Config.Cluster.Name, wait)
		if err != nil {
			return nil, err
		}
		r.lock, r.lockFor = lock, req.Config.Cluster.Name
	}
	r.tok = req.Token
	res, err := r.session.Up(ctx, pipeline.UpOptions{Token: req.Token, Self: r.Self, ConfigFile: r.ConfigFile, DeployTimeout: r.DeployTimeout})
	r.res = res
	if res != nil {
		r.stop = res.Stop
	}
	return res, err
}

// Smoke implements Runner.
func (r *PipelineRunner) Smoke(ctx context.Context) ([]smoke.Result, error) {
	r.mu.Lock()
	s, res, tok := r.session, r.res, r.tok
	r.mu.Unlock()
	if s == nil || res == nil {
		return nil, errors.New("nothing is forwarded yet: run up first")
	}
	return s.Smoke(ctx, tok, res.HTTPPort, res.HTTPSPort)
}

// Where implements Runner.
func (r *PipelineRunner) Where() Where {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.session == nil {
		return Where{}
	}
	return Where{Cluster: r.session.Config.Cluster.Name, Kubeconfig: r.session.Cluster.Kubeconfig, Namespace: r.session.Profile.Namespace}
}

// Exists implements Runner.
func (r *PipelineRunner) Exists(ctx context.Context) string {
	r.mu.Lock()
	s := r.session
	r.mu.Unlock()
	if s == nil {
		return "nothing was started"
	}
	return s.Exists(ctx)
}

// Close implements Runner.
func (r *PipelineRunner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopForward()
	r.lock.Release()
	r.lock = nil
}

func (r *PipelineRunner) stopForward() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}
