package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apimdev/apimdev/internal/config"
)

// ProtectSecrets takes the variables that carry secrets (config.SecretVars:
// the gateway token, the Entra app's client secret, a kit key's password)
// out of this process's environment, so no program apimdev starts inherits
// them: kind's docker and podman commands, sudo, the background forward.
// The getenv it returns still answers them, from memory, for the code that
// reads them on purpose. main calls it first thing.
func ProtectSecrets() func(string) string {
	held := map[string]string{}
	for _, k := range config.SecretVars {
		if v, ok := os.LookupEnv(k); ok {
			held[k] = v
			_ = os.Unsetenv(k)
		}
	}
	return func(k string) string {
		if v, ok := held[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// origin says which of the user's settings set field: a flag, an APIMDEV_*
// variable, or a config file and line; "" when none did.
func (a *app) origin(cmd *cobra.Command, field string) string {
	var flag string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if flagField(f) == field {
			flag = "--" + f.Name
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok && f.Name == "set" {
			for _, kv := range sv.GetSlice() {
				if k, _, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == field {
					flag = "--set " + field
				}
			}
		}
	})
	if flag != "" {
		return flag
	}
	for env, f := range config.EnvVars {
		if f == field && a.getenv(env) != "" {
			return env
		}
	}
	path := a.configFile
	if path == "" {
		path = config.DefaultFile
	}
	if b, err := os.ReadFile(path); err == nil {
		if n := config.Line(b, field); n > 0 {
			return fmt.Sprintf("%s line %d", path, n)
		}
	}
	return ""
}

// credentialFrom says where up's credential came from, for preflight: the
// variable, stdin, or the file and which setting named it.
func (a *app) credentialFrom(cmd *cobra.Command, cfg config.Config, src config.TokenSource) string {
	field := "gateway.tokenFile"
	if cfg.Gateway.Auth.Mode() == config.AuthEntraApp {
		field = "gateway.auth.clientSecretFile"
	}
	s := string(src)
	switch {
	case s == "":
		return ""
	case strings.HasPrefix(s, "file ") || s == "stdin":
		if o := a.origin(cmd, field); o != "" {
			return s + ", named by " + o
		}
		return s
	default:
		return "the " + s + " variable"
	}
}
