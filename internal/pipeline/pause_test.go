package pipeline

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/state"
)

// pausingCluster is the fake cluster with the engine's pause: a paused
// cluster inspects as paused, whatever it was.
type pausingCluster struct {
	*fakeCluster
	mu               sync.Mutex
	paused           bool
	pauses, unpauses int
}

func (p *pausingCluster) Inspect(ctx context.Context) (cluster.ClusterState, string) {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if paused {
		return cluster.ClusterPaused, "apimdev-control-plane"
	}
	return p.fakeCluster.Inspect(ctx)
}

func (p *pausingCluster) Pause(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		return nil, nil
	}
	p.paused = true
	p.pauses++
	return []string{"apimdev-control-plane"}, nil
}

func (p *pausingCluster) Unpause(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return nil, nil
	}
	p.paused = false
	p.unpauses++
	return []string{"apimdev-control-plane"}, nil
}

func TestPauseStatusResume(t *testing.T) {
	w := newWorld(t)
	if _, err := w.up(UpOptions{}); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	w.kind.state = cluster.ClusterOurs
	pc := &pausingCluster{fakeCluster: w.kind}
	s := w.session()
	s.Cluster = pc
	ctx := context.Background()

	res, err := s.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Already || !res.Since.Equal(w.now) || len(res.Nodes) != 1 {
		t.Fatalf("Pause = %+v", res)
	}
	if rec, ok := w.files.Paused(); !ok || rec.By != state.PausedByCommand || !rec.Since.Equal(w.now) {
		t.Fatalf("pause record %+v, %v", rec, ok)
	}
	st := s.Status(ctx)
	if st.State != "paused" || st.Paused == nil || !st.Paused.Since.Equal(w.now) || st.Paused.By != state.PausedByCommand {
		t.Fatalf("status of a paused cluster: state %q, paused %+v", st.State, st.Paused)
	}
	// Pausing again changes nothing and says so.
	if again, err := s.Pause(ctx); err != nil || !again.Already || pc.pauses != 1 {
		t.Fatalf("a second Pause = %+v, %v (%d pauses)", again, err, pc.pauses)
	}

	started := time.Now()
	rr, err := s.Resume(ctx, started)
	if err != nil {
		t.Fatalf("Resume: %v\n%s", err, w.log.text())
	}
	if rr.NotPaused || pc.unpauses != 1 || len(rr.Restarted) != 0 || len(rr.Smoke) == 0 || rr.Green <= 0 {
		t.Fatalf("Resume = %+v (%d unpauses)", rr, pc.unpauses)
	}
	if _, ok := w.files.Paused(); ok {
		t.Fatal("the pause record is left after the resume")
	}
	if st := s.Status(ctx); st.State != string(cluster.ClusterOurs) || st.Paused != nil {
		t.Fatalf("status after resume: %q %+v", st.State, st.Paused)
	}
}

// A cluster paused by hand (`docker pause`), or whose state directory was
// lost, is paused all the same: since when is unknown.
func TestStatusOfAClusterPausedByHand(t *testing.T) {
	w := newWorld(t)
	w.kind.state = cluster.ClusterPaused
	st := w.session().Status(context.Background())
	if st.State != "paused" || st.Paused == nil || !st.Paused.Since.IsZero() || !strings.Contains(st.Paused.By, "by hand") {
		t.Fatalf("status: state %q, paused %+v", st.State, st.Paused)
	}
}

// Only a running cluster apimdev made is paused.
func TestPauseRefusesWhatIsNotOurs(t *testing.T) {
	w := newWorld(t)
	w.kind.state = cluster.ClusterForeign
	s := w.session()
	pc := &pausingCluster{fakeCluster: w.kind}
	s.Cluster = pc
	if _, err := s.Pause(context.Background()); err == nil || !strings.Contains(err.Error(), "only a running cluster apimdev made") {
		t.Fatalf("Pause of a foreign cluster: %v", err)
	}
	if pc.pauses != 0 {
		t.Fatal("a foreign cluster was paused")
	}
	if _, ok := w.files.Paused(); ok {
		t.Fatal("a pause record was left")
	}
}

// down --keep-cluster removes the gateway through the API server: a paused
// cluster is thawed first, and its objects are gone after.
func TestDownKeepClusterThawsAPausedCluster(t *testing.T) {
	w := newWorld(t)
	if _, err := w.up(UpOptions{}); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	w.kind.state = cluster.ClusterOurs
	pc := &pausingCluster{fakeCluster: w.kind}
	s := w.session()
	s.Cluster = pc
	if _, err := s.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Down(context.Background(), true); err != nil {
		t.Fatalf("down --keep-cluster of a paused cluster: %v\n%s", err, w.log.text())
	}
	if pc.unpauses != 1 || pc.paused {
		t.Fatalf("%d unpause(s), paused %v", pc.unpauses, pc.paused)
	}
	if !strings.Contains(w.log.text(), "resumed the paused cluster") {
		t.Errorf("down did not say it resumed the cluster:\n%s", w.log.text())
	}
}

// up on a paused cluster resumes it first (and forgets the pause record);
// on one that runs it does nothing.
func TestResumeIfPaused(t *testing.T) {
	w := newWorld(t)
	w.kind.state = cluster.ClusterOurs
	pc := &pausingCluster{fakeCluster: w.kind}
	s := w.session()
	s.Cluster = pc
	ctx := context.Background()
	if did, err := s.ResumeIfPaused(ctx); err != nil || did || pc.unpauses != 0 {
		t.Fatalf("ResumeIfPaused of a running cluster = %v, %v (%d unpauses)", did, err, pc.unpauses)
	}
	if _, err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if did, err := s.ResumeIfPaused(ctx); err != nil || !did || pc.unpauses != 1 {
		t.Fatalf("ResumeIfPaused of a paused cluster = %v, %v (%d unpauses)", did, err, pc.unpauses)
	}
	if _, ok := w.files.Paused(); ok {
		t.Fatal("the pause record is left")
	}
}
