package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// The token and the client secret are read, and then in no program apimdev
// starts: a child's environment does not have them.
func TestProtectSecretsKeepsThemFromChildren(t *testing.T) {
	const canary = "contoso-gw&202612301200&Q0FOQVJZLWNoaWxkLWVudg=="
	t.Setenv("APIMDEV_TOKEN", canary)
	t.Setenv("APIMDEV_CLIENT_SECRET", "abc8Q~canary-client-secret-value-000000")
	t.Setenv("APIMDEV_NAME", "contoso-gw")
	getenv := ProtectSecrets()
	if getenv("APIMDEV_TOKEN") != canary || getenv("APIMDEV_NAME") != "contoso-gw" {
		t.Fatalf("getenv lost a value: %q %q", getenv("APIMDEV_TOKEN"), getenv("APIMDEV_NAME"))
	}
	if os.Getenv("APIMDEV_TOKEN") != "" || os.Getenv("APIMDEV_CLIENT_SECRET") != "" {
		t.Fatal("the secrets are still in the process environment")
	}
	name, args := "env", []string(nil)
	if runtime.GOOS == "windows" {
		name, args = "cmd", []string{"/c", "set"}
	}
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Skip("no env program here:", err)
	}
	if strings.Contains(string(out), canary) || strings.Contains(string(out), "canary-client-secret") {
		t.Fatal("a child process inherited a secret")
	}
	if !strings.Contains(string(out), "APIMDEV_NAME=contoso-gw") {
		t.Fatal("a child process lost an ordinary setting")
	}
}

// Preflight says where the token came from: the variable, or the file and
// the setting that named it (a flag, a variable, a config file's line).
func TestPreflightSaysWhereTheTokenCameFrom(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(testdir.New(t), "no-docker.sock"))
	dir := testdir.New(t)
	tokFile := filepath.Join(dir, "gw.token")
	if err := os.WriteFile(tokFile, []byte("GatewayKey contoso-gw&202612301200&"+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "apimdev.yaml")
	body := "apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  name: contoso-gw\n  endpoint: contoso.configuration.azure-api.net\n  tokenFile: " + tokFile + "\n"
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	home := testdir.New(t)
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--config", cfgFile}, "from file " + tokFile + ", named by " + cfgFile + " line 6"},
		{nil, []string{"--config", cfgFile, "--token-file", tokFile}, "named by --token-file"},
		{map[string]string{"APIMDEV_TOKEN_FILE": tokFile}, []string{"--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net"}, "named by APIMDEV_TOKEN_FILE"},
		{map[string]string{"APIMDEV_TOKEN": "contoso-gw&202612301200&" + canary}, []string{"--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net"}, "from the APIMDEV_TOKEN variable"},
	} {
		env := map[string]string{"APIMDEV_HOME": home}
		for k, v := range tt.env {
			env[k] = v
		}
		r := apimdev(t, env, "", append([]string{"preflight", "--http-port", "18941", "--https-port", "18942"}, tt.args...)...)
		if !strings.Contains(r.err+r.out, tt.want) {
			t.Errorf("%v: no %q in\n%s%s", tt.args, tt.want, r.out, r.err)
		}
		if strings.Contains(r.out+r.err, canary) {
			t.Fatalf("the token leaked:\n%s", r.err)
		}
	}
}
