package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// ci's pod logs: a file per container of every gateway pod, each through
// the scrub it is given.
func TestWritePodLogs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	dir := testdir.New(t)
	scrubbed := 0
	files, err := w.session().WritePodLogs(context.Background(), dir, func(b []byte) []byte {
		scrubbed++
		return bytes.ToUpper(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || scrubbed != len(files) {
		t.Fatalf("%d file(s), %d scrubbed: %v", len(files), scrubbed, files)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) != 3 || parts[0] != "apim-gateway" || !strings.HasPrefix(parts[1], "contoso-gw-") || !strings.HasSuffix(parts[2], ".log") {
			t.Errorf("file %s: want apim-gateway/POD/CONTAINER.log", rel)
		}
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 || !bytes.Equal(b, bytes.ToUpper(b)) {
			t.Errorf("%s: %q %v (not through the scrub)", f, b, err)
		}
	}
}

// --checks: the production checks of the deployed profile, as a step.
func TestCheckDeployed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	w.log.reset()
	rs, err := w.session().CheckDeployed(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, w.log.text())
	}
	names := map[string]bool{}
	for _, r := range rs {
		names[r.Name] = r.OK
	}
	if !names["replicas"] || !names["token expiry"] {
		t.Fatalf("checks %+v", rs)
	}
	if !strings.Contains(w.log.text(), "checks done") {
		t.Errorf("no checks step:\n%s", w.log.text())
	}
}
