package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func authCfg(a Auth) Config {
	c := Default()
	c.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	c.Gateway.Auth = a
	return c
}

// Each mode's bad inputs, every problem listed at once with its fix.
func TestAuthProblemsAreAllListed(t *testing.T) {
	for _, c := range []struct {
		name string
		auth Auth
		want []string // one per problem, in order
	}{
		{"entra app with nothing", Auth{Type: AuthEntraApp}, []string{"gateway.auth.tenantId: is empty", "gateway.auth.clientId: is empty"}},
		{"entra app with bad shapes", Auth{Type: AuthEntraApp, TenantID: "contoso.onmicrosoft.com", ClientID: "1234", Authority: "http://login.example"},
			[]string{"gateway.auth.tenantId: \"contoso.onmicrosoft.com\" is not a GUID", "gateway.auth.clientId: \"1234\" is not a GUID", "gateway.auth.authority: \"http://login.example\" is not an https:// URL"}},
		{"workload identity without a client", Auth{Type: AuthWorkloadIdentity, ClientSecretFile: "s.txt"},
			[]string{"gateway.auth.clientId: is empty", "gateway.auth.clientSecretFile: is set, but workload identity uses no secret"}},
		{"token with entra ids", Auth{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}, []string{"gateway.auth.tenantId: is set, but the gateway authenticates with its token"}},
		{"unknown mode", Auth{Type: "certificate"}, []string{"gateway.auth.type: \"certificate\" is not an authentication mode"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := authCfg(c.auth).Validate()
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != len(c.want) {
				t.Fatalf("got %v, want %d problem(s)", err, len(c.want))
			}
			for i, w := range c.want {
				if !strings.HasPrefix(ps[i].Error(), w) || ps[i].Fix == "" {
					t.Errorf("problem %d = %q (fix %q), want %q", i, ps[i].Error(), ps[i].Fix, w)
				}
			}
		})
	}
	good := Auth{Type: AuthEntraApp, TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", Authority: "https://login.microsoftonline.us"}
	if err := authCfg(good).Validate(); err != nil {
		t.Fatalf("a good entra app config: %v", err)
	}
}

func TestAuthFromFileEnvAndFlags(t *testing.T) {
	dir := testdir.New(t)
	f := filepath.Join(dir, "apimdev.yaml")
	os.WriteFile(f, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  auth:\n    type: entraApp\n    tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\n"), 0o600)
	c, _, err := LoadFile(f, false)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"APIMDEV_CLIENT_ID": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("gateway.auth.type", "entra-app"); err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Auth.Mode() != AuthEntraApp || c.Gateway.Auth.ClientID == "" || c.Gateway.Auth.TenantID == "" {
		t.Fatalf("auth %+v", c.Gateway.Auth)
	}
	if err := c.Set("gateway.auth.type", "kerberos"); err == nil || !strings.Contains(err.Error(), "entra-app") {
		t.Fatalf("a bad --auth: %v", err)
	}
	os.WriteFile(f, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  auth:\n    clientSecret: oops\n"), 0o600)
	if _, _, err := LoadFile(f, false); err == nil || !strings.Contains(err.Error(), "clientSecretFile") {
		t.Fatalf("a secret in the file itself: %v", err)
	}
}

func TestLoadClientSecret(t *testing.T) {
	dir := testdir.New(t)
	const secret = "CANARY~secret.value_1"
	file := filepath.Join(dir, "secret.txt")
	os.WriteFile(file, []byte("\""+secret+"\"\r\n"), 0o600)
	c := authCfg(Auth{Type: AuthEntraApp, ClientSecretFile: file})
	none := func(string) string { return "" }
	tok, src, err := LoadToken(c, none, nil)
	if err != nil || tok.SecretValue() != secret || !tok.IsAppSecret() || !strings.HasPrefix(string(src), "file ") {
		t.Fatalf("from a file: %q %v", src, err)
	}
	c.Gateway.Auth.ClientSecretFile = ""
	tok, src, err = LoadToken(c, func(k string) string { return map[string]string{"APIMDEV_CLIENT_SECRET": secret}[k] }, nil)
	if err != nil || tok.SecretValue() != secret || src != "APIMDEV_CLIENT_SECRET" {
		t.Fatalf("from the environment: %q %v", src, err)
	}
	_, _, err = LoadToken(c, none, nil)
	if !IsNoToken(err) {
		t.Fatalf("no secret anywhere: %v", err)
	}
	os.WriteFile(file, []byte("  \n"), 0o600)
	c.Gateway.Auth.ClientSecretFile = file
	if _, _, err = LoadToken(c, none, nil); err == nil || IsNoToken(err) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("an empty secret file: %v", err)
	}
	for _, v := range []string{sprint(tok), tok.Redacted()} {
		if strings.Contains(v, secret) {
			t.Fatalf("a printed form holds the secret: %s", v)
		}
	}
	wi := authCfg(Auth{Type: AuthWorkloadIdentity, ClientID: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"})
	if tok, _, err := LoadToken(wi, none, nil); err != nil || !tok.IsZero() {
		t.Fatalf("workload identity needs no credential: %v", err)
	}
}

func sprint(v any) string { return fmt.Sprintf("%v %+v %#v %q", v, v, v, v) }
