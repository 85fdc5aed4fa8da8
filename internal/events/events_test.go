package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type hinted struct{}

func (hinted) Error() string { return "port 8080 is in use by nginx (pid 42)" }
func (hinted) Hint() string  { return "use --http-port 18080" }

func fakeClock() func() time.Time {
	t := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(250 * time.Millisecond); return t }
}

func run(r *Reporter) {
	s := r.Start("preflight", "checking the machine")
	s.Progress("docker %s", "20.10.24")
	s.Done("5 checks passed")
	s = r.Start("forward", "")
	s.Fail(errors.Join(errors.New("forwarding failed"), hinted{}))
	r.Warn("token", "expires in 3 days", "regenerate it")
}

func TestTextFace(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	run(NewReporter(NewText(&b, false), fakeClock()))
	want := "✓ preflight   750ms  5 checks passed\n" +
		"✗ forward     500ms  forwarding failed\n    port 8080 is in use by nginx (pid 42)\n    fix: use --http-port 18080\n" +
		"! token: expires in 3 days\n    fix: regenerate it\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	run(NewReporter(NewText(&b, true), fakeClock()))
	if !strings.Contains(b.String(), "• preflight checking the machine\n    docker 20.10.24\n") {
		t.Fatalf("progress lines missing:\n%s", b.String())
	}
}

func TestJSONFace(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	run(NewReporter(NewJSON(&b), fakeClock()))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("want 6 lines, got %d:\n%s", len(lines), b.String())
	}
	var last struct {
		Step, State, Detail, Hint string
		Elapsed                   float64
	}
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Step != "preflight" || last.State != "done" || last.Elapsed != 0.75 || last.Detail != "5 checks passed" {
		t.Fatalf("done event: %+v", last)
	}
	if err := json.Unmarshal([]byte(lines[4]), &last); err != nil || last.State != "failed" || last.Hint != "use --http-port 18080" {
		t.Fatalf("failed event: %+v %v", last, err)
	}
}

func TestStepEndsOnce(t *testing.T) {
	t.Parallel()
	var rec Recorder
	r := NewReporter(&rec, nil)
	func() (err error) {
		s := r.Start("deploy", "")
		defer s.End(&err)
		s.Done("ok")
		return errors.New("late")
	}()
	ev := rec.Events()
	if len(ev) != 2 || ev[1].State != Done {
		t.Fatalf("events: %+v", ev)
	}
}
