package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/testdir"
)

// render prints exactly what promote would apply: it takes promote's prod
// flags, and every prod.* setting reaches it the same three ways (file,
// APIMDEV_*, flag: a named one or --set).
func TestRenderTakesEveryProdSettingAsPromoteDoes(t *testing.T) {
	base := []string{"render", "--profile", "prod", "--unfitted", "-o", "yaml", "--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net",
		"--image", "mcr.microsoft.com/azure-api-management/gateway:2.11.1"}
	env := func(kv ...string) map[string]string {
		m := map[string]string{"APIMDEV_HOME": testdir.New(t)}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	plain := apimdev(t, env(), "", base...)
	if plain.code != 0 || !strings.Contains(plain.out, "replicas: 3") || !strings.Contains(plain.out, "kind: NetworkPolicy") {
		t.Fatalf("plain prod render: exit %d\n%s\n%s", plain.code, plain.err, plain.out)
	}
	for name, r := range map[string]run{
		"flags":     apimdev(t, env(), "", append(base, "--replicas", "4", "--set", "prod.networkPolicy.enabled=false")...),
		"variables": apimdev(t, env("APIMDEV_PROD_REPLICAS", "4", "APIMDEV_PROD_NETWORK_POLICY_ENABLED", "false"), "", base...),
		"--set":     apimdev(t, env(), "", append(base, "--set", "prod.replicas=4", "--set", "prod.networkPolicy.enabled=false")...),
	} {
		if r.code != 0 || !strings.Contains(r.out, "replicas: 4") || strings.Contains(r.out, "kind: NetworkPolicy") {
			t.Errorf("%s: exit %d, 4 replicas %v, a NetworkPolicy %v\n%s", name, r.code, strings.Contains(r.out, "replicas: 4"), strings.Contains(r.out, "kind: NetworkPolicy"), r.err)
		}
	}
	bad := apimdev(t, env(), "", append(base, "--set", "prod.memoryLimt=none", "--set", "prod.replicas")...)
	if bad.code == 0 || !strings.Contains(bad.err, `did you mean "prod.memoryLimit"?`) || !strings.Contains(bad.err, `--set "prod.replicas": give PATH=VALUE`) {
		t.Fatalf("bad --set: exit %d\n%s", bad.code, bad.err)
	}
}

// Every flag that sets a setting names a real one, and --set reaches every
// command that takes settings.
func TestEveryFieldFlagNamesARealSetting(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	root := a.rootCommand()
	if root.PersistentFlags().Lookup("set") == nil {
		t.Fatal("no --set")
	}
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if field := flagField(f); field != "" {
				n++
				if _, ok := config.FieldOf(field); !ok {
					t.Errorf("%s --%s sets %q, which is no setting", c.CommandPath(), f.Name, field)
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 25 {
		t.Fatalf("only %d flags set settings", n)
	}
	for _, name := range []string{"promote", "render"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Flags().Lookup("memory") == nil || flagField(c.Flags().Lookup("memory")) != "prod.memory" {
			t.Errorf("%s lacks --memory (prod.memory): %v", name, err)
		}
	}
}

// A newcomer checking the laptop before having the portal's values learns
// about the machine too: a missing endpoint is one failed check among the
// others (here the engine's), not the only thing said.
func TestPreflightWithoutAnEndpointStillChecksTheMachine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(testdir.New(t), "no-docker.sock"))
	r := apimdev(t, map[string]string{"APIMDEV_HOME": testdir.New(t)}, "", "preflight", "--runtime", "docker", "--http-port", "18933", "--https-port", "18934")
	if r.code != ExitFailure {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"✗ endpoint   gateway.endpoint is empty", "try `apimdev up --demo`", "✗ docker", "the Docker engine does not answer", "✓ ports", "token"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("preflight lacks %q:\n%s\n%s", want, r.out, r.err)
		}
	}
	// The settings' own problems still stop it at once, all of them.
	bad := apimdev(t, map[string]string{"APIMDEV_HOME": testdir.New(t)}, "", "preflight", "--name", "Bad_Name", "--http-port", "99999")
	if bad.code == 0 || !strings.Contains(bad.err, "gateway.name") || !strings.Contains(bad.err, "forward.httpPort") || strings.Contains(bad.err, "gateway.endpoint") {
		t.Fatalf("bad settings: exit %d\n%s", bad.code, bad.err)
	}
}
