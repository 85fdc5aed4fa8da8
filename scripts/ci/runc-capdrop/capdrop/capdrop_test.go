//go:build linux

package capdrop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestSpecFile(t *testing.T) {
	cases := []struct {
		args   []string
		want   string
		isExec bool
	}{
		{[]string{"--root", "/run/runc", "--log", "/x.log", "create", "--bundle", "/b", "id"}, "/b/config.json", false},
		{[]string{"--log-format=json", "create", "-b=/b2", "--pid-file", "p", "id"}, "/b2/config.json", false},
		{[]string{"run", "-d", "id"}, "config.json", false},
		{[]string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"}, "/tmp/p.json", true},
		{[]string{"exec", "-p=/tmp/q.json", "id"}, "/tmp/q.json", true},
		{[]string{"--root", "/r", "start", "id"}, "", false},
		{[]string{"--root", "create"}, "", false}, // "create" is the value of --root
		{[]string{"delete", "--force", "id"}, "", false},
	}
	for _, c := range cases {
		got, isExec := specFile(c.args)
		if got != c.want || isExec != c.isExec {
			t.Errorf("specFile(%q) = %q, %v; want %q, %v", c.args, got, isExec, c.want, c.isExec)
		}
	}
}

func TestFixSpecKeepsAllowedCaps(t *testing.T) {
	bnd, err := BoundingSet()
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	dir := testdir.New(t)
	path := filepath.Join(dir, "config.json")
	spec := `{"ociVersion":"1.0.2","process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_FANCY_NEW"]},` +
		`"oomScoreAdj":-999},"linux":{"resources":{"memory":{"limit":9223372036854771712}}}}`
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fixSpec(path, false); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(raw)
	if !strings.Contains(out, "CAP_CHOWN") || !strings.Contains(out, "CAP_FANCY_NEW") {
		t.Errorf("allowed or unknown capabilities were dropped: %s", out)
	}
	if !strings.Contains(out, "9223372036854771712") {
		t.Errorf("large integer not preserved: %s", out)
	}
	hasResource := bnd&(1<<capSysResource) != 0
	if got := strings.Contains(out, "CAP_SYS_RESOURCE"); got != hasResource {
		t.Errorf("CAP_SYS_RESOURCE kept=%v, but in bounding set=%v: %s", got, hasResource, out)
	}
	var parsed struct {
		Process struct {
			OOMScoreAdj int64 `json:"oomScoreAdj"`
		} `json:"process"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		t.Fatal(err)
	}
	if !hasResource && parsed.Process.OOMScoreAdj != ownOOMScoreAdj() {
		t.Errorf("oomScoreAdj = %d, want own %d", parsed.Process.OOMScoreAdj, ownOOMScoreAdj())
	}
}
