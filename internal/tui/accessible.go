package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"charm.land/huh/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
)

// RunAccessible is the wizard for screen readers: huh's accessible prompts,
// one question at a time, each validated as it is answered; then the
// pipeline's plain text lines, as `apimdev up` prints them. Nothing is ever
// redrawn. The forward runs until ctx ends (Ctrl-C).
func RunAccessible(ctx context.Context, opts Options, in io.Reader, out io.Writer) (Outcome, error) {
	// Plain text only: no colours or other escapes for a screen reader.
	out = &colorprofile.Writer{Forward: out, Profile: colorprofile.NoTTY}
	m := New(opts)
	f := m.form
	fmt.Fprintln(out, "apimdev: a local Azure API Management self-hosted gateway.")
	fmt.Fprintln(out, "Answer each question and press Enter; an empty answer keeps the value in brackets. Ctrl-C leaves.")
	if opts.ConfigFile != "" {
		fmt.Fprintf(out, "The values in brackets come from %s.\n", opts.ConfigFile)
	}
	fmt.Fprintln(out)

	// The prompts block on the terminal; Ctrl-C must not wait for them.
	asked := make(chan error, 1)
	go func() { asked <- m.ask(in, out) }()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\napimdev: nothing was started.")
		return Outcome{Interrupted: true}, nil
	case err := <-asked:
		if err != nil {
			return Outcome{}, err
		}
	}
	cfg, err := f.config()
	if err != nil {
		fmt.Fprintf(out, "%v\n", err)
		return Outcome{Err: err}, nil
	}
	tm, _ := f.loadToken(cfg)().(tokenMsg)
	if tm.err != nil {
		fmt.Fprintf(out, "token: %v\n", tokenProblem(tm.err))
		return Outcome{Err: tm.err}, nil
	}

	r := opts.Runner
	rep := events.NewReporter(events.NewText(out, true), opts.Now)
	fmt.Fprintf(out, "\nBringing up %s on kind cluster %q.\n", cfg.Gateway.Name, cfg.Cluster.Name)
	res, err := r.Up(ctx, UpRequest{Config: cfg, Token: tm.tok, Workshop: f.workshop()}, rep)
	if res != nil && len(res.Smoke) > 0 {
		smoke.Table(out, res.Smoke)
	}
	o := Outcome{Started: true}
	if err != nil {
		r.Close()
		o.Err, o.Hint, o.Interrupted = err, events.HintOf(err), errors.Is(err, context.Canceled)
		var fs *pipeline.FailedStep
		if errors.As(err, &fs) {
			o.Step = fs.Step
		}
		m.steps = stepList{} // the text lines above already told the steps
		fmt.Fprint(out, m.ClosingNote(o, func() string { return r.Exists(ctx) }))
		return o, nil
	}
	w := r.Where()
	fmt.Fprintf(out, "\nThe gateway answers on:\n  http://127.0.0.1:%d\n  https://127.0.0.1:%d  (self-signed certificate)\ntoken: %s\n",
		res.HTTPPort, res.HTTPSPort, res.TokenExpiry.Describe())
	if res.DemoKey != "" {
		fmt.Fprintf(out, "demo: apimdev's demo gateway (%s)\ndemo subscription key for the echo API: %s\n  curl -H \"%s: %s\" http://127.0.0.1:%d/echo/hello\n",
			demo.Label, res.DemoKey, demo.SubscriptionHeader, res.DemoKey, res.HTTPPort)
	}
	if res.Links != nil {
		fmt.Fprintf(out, "configuration link: %s\n", pipeline.LinkSummary(res.Links, time.Now()))
	}
	for _, b := range res.Backends {
		fmt.Fprintf(out, "backend %s: %s\n", b.Name, b.Line())
	}
	if w.Kubeconfig != "" {
		fmt.Fprintf(out, "kubectl: KUBECONFIG=%s kubectl -n %s get pods\n", w.Kubeconfig, w.Namespace)
	}
	o.Up, o.Detached, o.ForwardPID = true, res.Detached, res.ForwardPID
	if res.Detached {
		r.Close()
		m.res = res
		fmt.Fprint(out, m.ClosingNote(o, nil))
		return o, nil
	}
	fmt.Fprintln(out, "Forwarding until Ctrl-C; the cluster and the gateway keep running after that.")
	<-ctx.Done()
	r.Close()
	fmt.Fprint(out, m.ClosingNote(o, nil))
	return o, nil
}

// ask puts the form's questions one by one, the token's as its source says.
func (m Model) ask(in io.Reader, out io.Writer) error {
	f := m.form
	fs := f.newFields(true)
	run := func(fld huh.Field) error {
		if d := fs.descriptions[fld]; d != "" {
			fmt.Fprintf(out, "(%s)\n", d)
		}
		fld.Init()
		fld.Focus()
		err := fld.RunAccessible(out, in)
		fmt.Fprintln(out)
		return err
	}
	if err := run(fs.mode); err != nil {
		return err
	}
	// The questions that follow depend on the answer (token or client secret).
	fs = f.newFields(true)
	if f.vals.mode == modeKit {
		if err := run(fs.kit); err != nil {
			return err
		}
	}
	if f.vals.demoRun() {
		for _, fld := range []huh.Field{fs.httpPort, fs.httpsPort} {
			if err := run(fld); err != nil {
				return err
			}
		}
		return nil
	}
	flds := []huh.Field{fs.name, fs.endpoint}
	if f.vals.entra() {
		flds = append(flds, fs.tenantID, fs.clientID)
	}
	for _, fld := range append(flds, fs.source) {
		if err := run(fld); err != nil {
			return err
		}
	}
	switch f.vals.source {
	case sourcePaste:
		if err := run(fs.token); err != nil {
			return err
		}
	case sourceFile:
		// Ask again until the file holds a usable token.
		for {
			if err := run(fs.tokenFile); err != nil {
				return err
			}
			f.fileAsked = ""
			if check := f.checkFile(); check != nil {
				f.fileInfo, _ = check().(tokenFileMsg)
			}
			if f.fileInfo.err == nil {
				break
			}
			fmt.Fprintf(out, "token: %v\n\n", tokenProblem(f.fileInfo.err))
		}
	case sourceEnv:
		if err := run(fs.env); err != nil {
			return err
		}
	}
	if line, _ := f.tokenStatus(); line != "" {
		fmt.Fprintf(out, "token: %s\n\n", line)
	}
	for _, fld := range []huh.Field{fs.image, fs.httpPort, fs.httpsPort} {
		if err := run(fld); err != nil {
			return err
		}
	}
	return nil
}
