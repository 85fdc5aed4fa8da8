//go:build !windows

package scripts

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fuzz.sh passes a failed fuzz run only when its output is Go 1.26's
// fuzztime deadline race (golang/go#75804) and nothing else. The outputs
// under testdata/fuzz are that race as CI printed it and the failures that
// come close to it.
func TestFuzzScriptPassesOnlyTheDeadlineRace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, fuzztime string
		race           bool
	}{
		{"race.txt", "20s", true},
		{"race-late.txt", "20s", true}, // a loaded runner: 7 s past the budget
		{"race.txt", "18s", true},
		{"race.txt", "1m", false},      // failed 40 s before the budget ran out
		{"race.txt", "800000x", false}, // a count has no deadline to race
		{"deadline-early.txt", "20s", false},
		{"deadline-long-after.txt", "20s", false},
		{"other-target.txt", "20s", false},
		{"other-package.txt", "20s", false},
		{"target-own-deadline.txt", "20s", false},
		{"extra-message.txt", "20s", false},
		{"crasher.txt", "20s", false},
		{"data-race-after.txt", "20s", false},
		{"other-test-failed.txt", "20s", false},
		{"build-failed.txt", "20s", false},
		{"empty.txt", "20s", false},
	}
	for _, c := range cases {
		out, err := exec.Command("bash", "ci/fuzz.sh", "--classify", "internal/token", "FuzzParse", c.fuzztime, filepath.Join("testdata", "fuzz", c.file)).CombinedOutput()
		got := strings.TrimSpace(string(out))
		want := map[bool]string{true: "race", false: "failure"}[c.race]
		if got != want || (err == nil) != c.race {
			t.Errorf("%s at -fuzztime %s: %q (%v), want %q", c.file, c.fuzztime, got, err, want)
		}
	}
}
