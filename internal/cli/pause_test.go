package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/state"
)

func TestPausedLine(t *testing.T) {
	since := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	now := since.Add(90 * time.Minute)
	for _, c := range []struct {
		p    pipeline.PausedState
		want []string
	}{
		{pipeline.PausedState{Since: since, By: state.PausedByCommand}, []string{"1h30m0s ago", "by apimdev pause", "apimdev resume"}},
		{pipeline.PausedState{Since: since, By: state.PausedByAuto}, []string{"auto-pause", "next call through the forward resumes it"}},
		{pipeline.PausedState{By: "unknown (no record: paused by hand?)"}, []string{"by hand", "apimdev resume"}},
	} {
		got := pausedLine(&c.p, now)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("pausedLine(%+v) = %q; want %q in it", c.p, got, w)
			}
		}
	}
}
