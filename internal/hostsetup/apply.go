package hostsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/apimdev/apimdev/internal/safedir"
	"github.com/apimdev/apimdev/internal/state"
)

// Runner makes a plan's changes. System is the real one; tests record.
type Runner interface {
	// Run runs a program with env added to the environment.
	Run(argv []string, env []string) error
	// Create writes f; a file already there with other bytes is an error.
	Create(f File) error
	// StopProcess stops pid (SIGTERM, then waits) and removes pidFile.
	StopProcess(pid int, pidFile string) error
}

// Print shows the plan: what was found, each step with its command and its
// undo, then the notes.
func (p *InstallPlan) Print(w io.Writer, title string) {
	fmt.Fprintf(w, "%s\n  this machine: %s\n", title, strings.Join(p.Facts, ", "))
	if len(p.Steps) == 0 {
		fmt.Fprintln(w, "  nothing to change")
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s.Title)
		for _, l := range strings.Split(strings.TrimRight(s.Show, "\n"), "\n") {
			fmt.Fprintf(w, "       %s\n", l)
		}
		fmt.Fprintf(w, "       undo: %s\n", s.Undo)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// StepError says which step failed, what had already changed, and how to
// take those back.
type StepError struct {
	Step  int // 1-based
	Title string
	Err   error
	Done  []Step
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s) failed: %v", e.Step, e.Title, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Hint says what had changed by then.
func (e *StepError) Hint() string {
	if len(e.Done) == 0 {
		return "nothing was changed before it; fix the cause and run apimdev docker install again"
	}
	var undo []string
	for _, s := range e.Done {
		undo = append(undo, s.Undo)
	}
	return fmt.Sprintf("steps 1-%d were made (their undo: %s); fix the cause and run apimdev docker install again: it plans from what is there now", len(e.Done), strings.Join(undo, "; "))
}

// Apply makes the plan's changes in order, telling report before and after
// each. It stops at the first failure or when ctx ends.
func (p *InstallPlan) Apply(ctx context.Context, r Runner, report func(i int, s Step, err error, done bool)) error {
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return &StepError{Step: i + 1, Title: s.Title, Err: err, Done: p.Steps[:i]}
		}
		report(i, s, nil, false)
		var err error
		switch {
		case s.Argv != nil:
			err = r.Run(s.Argv, s.Env)
		case s.File != nil:
			err = r.Create(*s.File)
		case s.Do != nil:
			err = s.Do(r)
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		report(i, s, err, true)
		if err != nil {
			return &StepError{Step: i + 1, Title: s.Title, Err: err, Done: p.Steps[:i]}
		}
	}
	return nil
}

// System makes the changes on this machine, as root. Programs are taken
// from the system directories only (never from a PATH a user could have
// put a directory of theirs in), and their output goes to Out.
type System struct {
	Ctx context.Context
	Out io.Writer
}

// systemDirs are where a root program is looked for.
var systemDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Run runs argv; Ctrl-C (the context ending) asks the program to stop with
// SIGINT and gives it 30 s, so apt and dpkg can leave their databases whole.
func (s System) Run(argv []string, env []string) error {
	path := ""
	for _, d := range systemDirs {
		if p := filepath.Join(d, argv[0]); exists(p) {
			path = p
			break
		}
	}
	if path == "" {
		return fmt.Errorf("%s is not in %s", argv[0], strings.Join(systemDirs, ", "))
	}
	cmd := exec.CommandContext(s.Ctx, path, argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = s.Out, s.Out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// Create writes f through a temporary file in the same directory, so a
// half-written file never has the name. A file already there with the same
// bytes is left as it is.
func (s System) Create(f File) error {
	data := f.Data
	if f.From != "" {
		b, err := os.ReadFile(f.From)
		if err != nil {
			return err
		}
		data = b
	}
	if old, err := os.ReadFile(f.Path); err == nil {
		if bytes.Equal(old, data) {
			return nil
		}
		if f.From == "" {
			return fmt.Errorf("%s exists with other contents: apimdev does not overwrite it", f.Path)
		}
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Root writes (and Docker runs) what lands here: nobody else may be
	// able to change the directory or any above it.
	if err := safedir.Check(dir); err != nil {
		return err
	}
	return state.WriteFileMode(f.Path, data, os.FileMode(f.Mode))
}

// StopProcess sends SIGTERM and waits up to a minute for pid to end.
func (s System) StopProcess(pid int, pidFile string) error {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for proc.Signal(syscall.Signal(0)) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d did not stop within a minute", pid)
		}
		select {
		case <-s.Ctx.Done():
			return s.Ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
