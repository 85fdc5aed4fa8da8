package standinlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLinesAreMarked(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, problems := New(&buf, Settings{Format: "json", Level: "debug", Mode: "gateway"})
	if len(problems) != 0 {
		t.Fatalf("unexpected problems: %v", problems)
	}
	log.Debug("one")
	log.Error("two", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line is not JSON: %q", l)
		}
		if m["standin"] != Marker || m["mode"] != "gateway" {
			t.Errorf("line is not marked stand-in: %q", l)
		}
	}
}

func TestLevelsAndFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		s            Settings
		wantProblems int
		wantDebug    bool
		wantWarn     bool
	}{
		{"defaults", Settings{}, 0, false, true},
		{"warn", Settings{Level: "WARN"}, 0, false, true},
		{"error", Settings{Level: "error"}, 0, false, false},
		{"bad level", Settings{Level: "loud"}, 1, false, true},
		{"bad format", Settings{Format: "xml", Level: "debug"}, 1, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log, problems := New(&buf, tc.s)
			if len(problems) != tc.wantProblems {
				t.Fatalf("problems = %v, want %d", problems, tc.wantProblems)
			}
			log.Debug("dbg")
			log.Warn("wrn")
			out := buf.String()
			if strings.Contains(out, "dbg") != tc.wantDebug || strings.Contains(out, "wrn") != tc.wantWarn {
				t.Fatalf("output %q: want debug=%v warn=%v", out, tc.wantDebug, tc.wantWarn)
			}
			if out != "" && !strings.Contains(out, "stand-in") {
				t.Fatalf("text line is not marked stand-in: %q", out)
			}
		})
	}
}
