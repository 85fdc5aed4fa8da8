package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/testdir"
)

func TestUpDemoRefusesWhatItMakesItself(t *testing.T) {
	home := testdir.New(t)
	tokenFile := filepath.Join(home, "gw.token")
	os.WriteFile(tokenFile, []byte("GatewayKey x&202612301200&"+canary), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--demo", "--endpoint", "contoso.configuration.azure-api.net"}, "leave out --endpoint"},
		{[]string{"up", "--demo", "--token-file", tokenFile}, "leave out --token-file"},
		{[]string{"up", "--demo", "--image", "mcr.microsoft.com/azure-api-management/gateway:2.11.1"}, "--demo runs the stand-in gateway"},
		{[]string{"up", "--kit", filepath.Join(home, "missing.tar")}, "missing.tar"},
	} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", tt.args...)
		if r.code == 0 || !strings.Contains(r.err, tt.want) {
			t.Errorf("%v: exit %d, want %q in:\n%s", tt.args, r.code, tt.want, r.err)
		}
		if strings.Contains(r.out+r.err, canary) {
			t.Errorf("%v leaked the token", tt.args)
		}
	}
}

func TestKitCreateNamesItsFile(t *testing.T) {
	home := testdir.New(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"kit", "create"}, "name the kit file"},
		{[]string{"kit", "create", "-o", "kit.zip"}, "name it *.tar"},
		{[]string{"kit", "create", "a.tar", "-o", "b.tar"}, "two kit files"},
	} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.err, tt.want) {
			t.Errorf("%v: exit %d, want usage error %q:\n%s", tt.args, r.code, tt.want, r.err)
		}
	}
}

func TestEveryLabEndsWithItsCheck(t *testing.T) {
	t.Parallel()
	list := apimdev(t, nil, "", "lab", "list")
	for _, l := range labs.All() {
		if !strings.Contains(list.out, l.Title) {
			t.Errorf("lab list lacks %q", l.Title)
		}
		r := apimdev(t, nil, "", "lab", "show", fmt.Sprint(l.N))
		if r.code != 0 {
			t.Fatalf("lab show %d: %d %s", l.N, r.code, r.err)
		}
		tail := r.out[max(0, len(r.out)-200):]
		if !strings.Contains(tail, fmt.Sprintf("apimdev lab check %d", l.N)) {
			t.Errorf("lab %d (%s) does not end with its check:\n%s", l.N, l.File, tail)
		}
	}
	if r := apimdev(t, nil, "", "lab", "check", "9"); r.code != ExitUsage || !strings.Contains(r.err, "no lab 9") {
		t.Errorf("lab check 9: %d %s", r.code, r.err)
	}
}

func TestPromoteContextRefusesTheDemo(t *testing.T) {
	home := testdir.New(t)
	cfg := config.Default()
	cfg.Gateway.Endpoint = demo.Endpoint
	cfg.Gateway.Image = demo.DefaultImage
	b, _ := json.Marshal(cfg)
	dir := filepath.Join(home, "clusters", cfg.Cluster.Name)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
	env := map[string]string{"APIMDEV_HOME": home, "APIMDEV_TOKEN": "GatewayKey apimdev-gw&202612301200&" + canary}
	for _, extra := range [][]string{nil, {"--endpoint", "contoso.configuration.azure-api.net"}} {
		r := apimdev(t, env, "", append([]string{"promote", "--yes", "--context", "my-aks"}, extra...)...)
		if r.code != ExitFailure || !strings.Contains(r.err, "runs the demo (stand-in, not Azure API Management)") || !strings.Contains(r.err, "fix:") {
			t.Errorf("promote --context %v: exit %d\n%s", extra, r.code, r.err)
		}
	}
}

func TestLabelledJSONSaysStandin(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rep := events.NewReporter(&labelledJSON{w: &buf}, nil)
	rep.Start("demo", "x").Done("ready")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["standin"] != demo.Label || m["step"] != "demo" {
			t.Errorf("line %s: %v %v", l, m, err)
		}
	}
}
