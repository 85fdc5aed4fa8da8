package state

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestPauseRecord(t *testing.T) {
	c := ClusterDir{Dir: filepath.Join(testdir.New(t), "clusters", "apimdev")}
	if _, ok := c.Paused(); ok {
		t.Fatal("paused with no record")
	}
	since := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	if err := c.SavePause(PauseRecord{Since: since, By: PausedByAuto}); err != nil {
		t.Fatal(err)
	}
	r, ok := c.Paused()
	if !ok || !r.Since.Equal(since) || r.By != PausedByAuto {
		t.Fatalf("Paused = %+v, %v", r, ok)
	}
	c.ForgetPause()
	if _, ok := c.Paused(); ok {
		t.Fatal("paused after ForgetPause")
	}
	var none ClusterDir // no state directory
	if _, ok := none.Paused(); ok {
		t.Fatal("paused without a state directory")
	}
}

func TestAutoPauseRecord(t *testing.T) {
	c := ClusterDir{Dir: filepath.Join(testdir.New(t), "clusters", "apimdev")}
	if _, ok := c.AutoPause(); ok {
		t.Fatal("an idle time with no record")
	}
	for _, d := range []time.Duration{20 * time.Second, 0} {
		if err := c.SaveAutoPause(d); err != nil {
			t.Fatal(err)
		}
		if got, ok := c.AutoPause(); !ok || got != d {
			t.Fatalf("AutoPause = %s, %v; want %s", got, ok, d)
		}
	}
}
