package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/settings"
)

// A record a newer apimdev wrote is refused with what to do, not read as if
// its fields meant what they mean to this one, nor as a decode error.
func TestARecordOfANewerApimdevIsRefusedClearly(t *testing.T) {
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	rewriteRecord(t, w, func(doc map[string]any, _ map[string]string) {
		doc["schema"], doc["apimdevVersion"] = settings.RecordSchema+1, "v9.0.0"
		doc["config"] = "a layout this apimdev cannot decode"
	})
	_, err := w.session().ReadRecord(context.Background())
	var newer *settings.NewerRecordError
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
	rewriteRecord(t, w, func(doc map[string]any, data map[string]string) {
		if doc["schema"] != float64(settings.RecordSchema) || data["schema"] != fmt.Sprint(settings.RecordSchema) {
			t.Fatalf("this apimdev's record: schema %v, ConfigMap %q", doc["schema"], data["schema"])
		}
		delete(doc, "schema")
		delete(data, "schema")
		doc["apimdevVersion"] = "9e2dd79"
	})
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

// rewriteRecord edits the record in the world's cluster as another apimdev
// would have written it: its JSON document and the ConfigMap's other keys.
func rewriteRecord(t *testing.T, w *world, edit func(doc map[string]any, data map[string]string)) {
	t.Helper()
	cms := w.kube.CoreV1().ConfigMaps("apim-gateway")
	cm, err := cms.Get(context.Background(), settings.RecordName("contoso-gw"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cm.Data[settings.RecordKey]), &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc, cm.Data)
	b, _ := json.Marshal(doc)
	cm.Data[settings.RecordKey] = string(b)
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
