package tui

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestAccessibleAsksLineByLineThenPrintsPlainLines(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	tokenFile := filepath.Join(dir, "gw.token")
	os.WriteFile(tokenFile, []byte(canaryToken()+"\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeRunner{afterUp: cancel} // Ctrl-C once up: the forward stops
	answers := strings.Join([]string{
		"1",                        // I have a gateway token
		"Contoso_GW", "contoso-gw", // refused, then accepted
		standinEndpoint,
		"2", // the token from a file
		filepath.Join(dir, "missing"), tokenFile,
		"",      // keep the image
		"28080", // http port
		"",      // keep the https port
	}, "\n") + "\n"
	var out bytes.Buffer
	o, err := RunAccessible(ctx, testOptions(f, nil), iotest.OneByteReader(strings.NewReader(answers)), &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	mustContain(t, text,
		"Gateway name [apimdev-gw]:", `"Contoso_GW" is not usable as a Kubernetes name`,
		"Configuration endpoint:", "1. paste it here (masked)", "2. read it from a file",
		"token: cannot read", "token: gateway contoso-gw, expires in 29 days",
		"Gateway image [mcr.microsoft.com/azure-api-management/gateway:v2]:", "Local HTTPS port [8443]:",
		"✓ preflight", "✓ smoke", "health (https)", "The gateway answers on:", "http://127.0.0.1:28080", "https://127.0.0.1:8443",
		"kubectl: KUBECONFIG=", "Forwarding until Ctrl-C", "stopped forwarding")
	if strings.Contains(text, canarySig) {
		t.Error("the token's signature was printed")
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("escape sequences in accessible output: %q", text[strings.Index(text, "\x1b"):][:20])
	}
	if !o.Up || len(f.ups) != 1 {
		t.Fatalf("outcome %+v, %d Up calls", o, len(f.ups))
	}
	c := f.ups[0].Config
	if c.Gateway.Name != "contoso-gw" || c.Gateway.TokenFile != tokenFile || c.Forward.HTTPPort != 28080 || c.Forward.HTTPSPort != 8443 {
		t.Errorf("config %+v %+v", c.Gateway, c.Forward)
	}
	if _, _, closed := f.calls(); closed != 1 {
		t.Errorf("Close %d, want 1", closed)
	}
}

func TestAccessibleFailureSaysHowToResume(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	tokenFile := filepath.Join(dir, "gw.token")
	os.WriteFile(tokenFile, []byte(canaryToken()), 0o600)
	f := &fakeRunner{scripts: []upScript{{failAt: "deploy"}}}
	o := testOptions(f, nil)
	o.Config.Gateway.Name, o.Config.Gateway.Endpoint, o.Config.Gateway.TokenFile = "contoso-gw", standinEndpoint, tokenFile
	var out bytes.Buffer
	oc, err := RunAccessible(context.Background(), o, iotest.OneByteReader(strings.NewReader(strings.Repeat("\n", 8))), &out)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), "✗ deploy", "fix: check --image", `Now: cluster "apimdev" exists.`, "again to continue from there")
	if oc.Step != "deploy" || oc.Err == nil {
		t.Errorf("outcome %+v", oc)
	}
}
