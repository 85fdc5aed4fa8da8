package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
			if err := r.decode(b); err != nil {
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
			out, err := r.encode()
			if err != nil {
				t.Fatal(err)
			}
			var again Record
			if err := again.decode(out); err != nil || again.Schema != RecordSchema || !sameApplied(&r, &again) {
				t.Fatalf("rewritten: schema %d, same %v, %v", again.Schema, sameApplied(&r, &again), err)
			}
		})
	}
}

// A record a newer apimdev wrote is refused with what to do, not read as if
// its fields meant what they mean to this one, nor as a decode error.
func TestARecordOfANewerApimdevIsRefusedClearly(t *testing.T) {
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	cms := w.kube.CoreV1().ConfigMaps("apim-gateway")
	cm, err := cms.Get(context.Background(), RecordName("contoso-gw"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cm.Data[recordKey]), &doc); err != nil {
		t.Fatal(err)
	}
	doc["schema"], doc["apimdevVersion"] = RecordSchema+1, "v9.0.0"
	doc["config"] = "a layout this apimdev cannot decode"
	b, _ := json.Marshal(doc)
	cm.Data[recordKey] = string(b)
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = w.session().ReadRecord(context.Background())
	var newer *NewerRecordError
	if !errors.As(err, &newer) || newer.Version != "v9.0.0" || !strings.Contains(err.Error(), "newer apimdev (v9.0.0, record schema 3") ||
		!strings.Contains(newer.Hint(), "use apimdev v9.0.0 or newer") {
		t.Fatalf("err = %v", err)
	}
	if _, err := w.up(UpOptions{}); !errors.As(err, &newer) {
		t.Fatalf("up on a newer apimdev's gateway: %v", err)
	}
}

// Upgrading apimdev on a laptop with a running gateway: the record the
// previous apimdev wrote (no schema field) is taken as what is deployed, and
// up changes nothing, not even the record.
func TestUpAfterUpgradingApimdevChangesNothing(t *testing.T) {
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	cms := w.kube.CoreV1().ConfigMaps("apim-gateway")
	cm, err := cms.Get(context.Background(), RecordName("contoso-gw"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cm.Data[recordKey]), &doc); err != nil || doc["schema"] != float64(RecordSchema) {
		t.Fatalf("this apimdev's record: schema %v, %v", doc["schema"], err)
	}
	delete(doc, "schema")
	doc["apimdevVersion"] = "9e2dd79"
	b, _ := json.Marshal(doc)
	cm.Data[recordKey] = string(b)
	delete(cm.Data, "schema")
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(w.files.Dir) // and the state directory of the old apimdev is gone too
	w.log.reset()
	mark := len(w.kube.Actions())
	if _, err := w.up(UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := w.writes(mark); n != 0 {
		t.Fatalf("up after the upgrade wrote %d time(s): %+v\n%s", n, w.kube.Actions()[mark:], w.log.text())
	}
	if !strings.Contains(w.log.text(), "it records the dev profile") {
		t.Fatalf("up did not take the earlier record:\n%s", w.log.text())
	}
}
