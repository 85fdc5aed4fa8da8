package gateway

import (
	"strings"
	"testing"
)

func TestVersionWarnings(t *testing.T) {
	for _, c := range []struct{ ref, version string }{
		{"mcr.microsoft.com/azure-api-management/gateway:2.12.1", "2.12.1"},
		{"mcr.microsoft.com/azure-api-management/gateway:v2", ""},
		{"mcr.microsoft.com/azure-api-management/gateway@sha256:0123", ""},
		{"the tag of the same local image gateway:v2 → gateway:2.11.1", "2.11.1"},
		{"apimdev-e2e/standin-gateway:2.11.1-standin", "2.11.1"},
		{"registry:5000/gateway:2.7.3", "2.7.3"},
	} {
		if got := VersionOf(c.ref); got != c.version {
			t.Errorf("VersionOf(%q) = %q, want %q", c.ref, got, c.version)
		}
	}
	if w := VersionWarning("2.12.1", true); !strings.Contains(w, "issues/418") || !strings.Contains(w, "relies on the backup") {
		t.Errorf("2.12.1 with backup: %q", w)
	}
	if w := VersionWarning("2.12.0", false); !strings.Contains(w, "issues/418") || strings.Contains(w, "relies on the backup") {
		t.Errorf("2.12.0 without backup: %q", w)
	}
	if w := VersionWarning("2.7.3", true); !strings.Contains(w, "fixed in 2.8.0") {
		t.Errorf("2.7.3: %q", w)
	}
	for _, v := range []string{"2.11.2", "2.9.0", ""} {
		if w := VersionWarning(v, true); w != "" {
			t.Errorf("%q: %q", v, w)
		}
	}
}
