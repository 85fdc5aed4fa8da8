package tui

import (
	"context"
	"strings"
	"testing"
)

// The real promoter refuses before a finished Up: it has no session, lock or
// token to promote with, and says what to do instead of touching a cluster.
func TestPipelinePromoterNeedsAFinishedUp(t *testing.T) {
	p := (&PipelineRunner{}).Promoter()
	if _, err := p.Diff(context.Background()); err == nil || !strings.Contains(err.Error(), "promote follows a finished run") {
		t.Fatalf("Diff before up: %v", err)
	}
	called := false
	_, err := p.Promote(context.Background(), nil, func(PromoteSample) { called = true })
	if err == nil || !strings.Contains(err.Error(), "not up yet") || called {
		t.Fatalf("Promote before up: %v (live called: %v)", err, called)
	}
}
