package junit

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestWriteFileRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(testdir.New(t), "out", "smoke.xml")
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s := NewSuite("apimdev smoke", at, []Case{
		{Name: "health (http)", Classname: "apimdev.smoke", Time: 0.012},
		{Name: "echo <with> key & \"quotes\"", Classname: "apimdev.smoke", Time: 0.02,
			Failure: &Failure{Message: "status 401, want 200", Text: "fix: set APIM_SUBSCRIPTION_KEY"}},
	}, Property{Name: "gateway", Value: "stand-in, not Azure API Management"})
	if err := WriteFile(path, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "<?xml") {
		t.Errorf("no XML header:\n%s", b)
	}
	var doc Suites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if doc.Tests != 2 || doc.Failures != 1 || len(doc.Suites) != 1 {
		t.Fatalf("counts: %+v", doc)
	}
	got := doc.Suites[0]
	if got.Timestamp != "2026-05-01T10:00:00" || got.Cases[1].Name != `echo <with> key & "quotes"` || got.Cases[1].Failure.Text != "fix: set APIM_SUBSCRIPTION_KEY" {
		t.Errorf("suite: %+v", got)
	}
	if got.Properties[0].Value != "stand-in, not Azure API Management" {
		t.Errorf("properties: %+v", got.Properties)
	}
	if got.Cases[0].Failure != nil {
		t.Errorf("a passing case has a failure")
	}
	if fi, _ := os.Stat(path); testdir.POSIXModes && fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}
