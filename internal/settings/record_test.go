package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/config"
)

// Records as earlier apimdev versions wrote them, each named by the commit
// that wrote it (testdata/records: made by running that commit's encode on
// a contoso-gw gateway, dev and prod). They are read by every later apimdev:
// never edit or delete one; add the record of a new layout beside them.
func TestRecordsOfEarlierVersionsAreRead(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "records", "*.json"))
	if err != nil || len(files) < 8 {
		t.Fatalf("record fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var r Record
			if err := r.Decode(b); err != nil {
				t.Fatalf("an earlier apimdev's record is unreadable: %v", err)
			}
			profile := strings.TrimSuffix(filepath.Base(f)[strings.Index(filepath.Base(f), "-")+1:], ".json")
			if r.Schema != 1 || r.Profile != profile || r.Config.Gateway.Name != "contoso-gw" || r.Spec.Gateway != "contoso-gw" ||
				r.Config.Gateway.Endpoint != "contoso.configuration.azure-api.net" || r.Spec.Endpoint != r.Config.Gateway.Endpoint {
				t.Fatalf("read as schema %d, profile %q, gateway %q/%q, endpoint %q/%q", r.Schema, r.Profile, r.Config.Gateway.Name, r.Spec.Gateway, r.Config.Gateway.Endpoint, r.Spec.Endpoint)
			}
			// What the cluster runs is the spec as written, whatever today's defaults.
			if profile == "prod" && (r.Spec.Replicas != 3 || r.Config.Prod.Replicas != 3 || r.Config.Prod.Metrics != config.MetricsStatsd) {
				t.Fatalf("prod read as %d replicas (settings %d), metrics %q", r.Spec.Replicas, r.Config.Prod.Replicas, r.Config.Prod.Metrics)
			}
			if r.Config.Output != "text" {
				t.Fatalf("output = %q", r.Config.Output)
			}
			// Written again by this apimdev, it says its schema and reads back the same.
			out, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			var again Record
			if err := again.Decode(out); err != nil || again.Schema != RecordSchema || !SameApplied(&r, &again) {
				t.Fatalf("rewritten: schema %d, same %v, %v", again.Schema, SameApplied(&r, &again), err)
			}
		})
	}
}
