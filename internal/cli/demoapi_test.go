package cli

import (
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// Bad input to `demo api add` is refused before any cluster is looked
// for, each with what is wrong and the fix.
func TestDemoAPIAddRefusesBadInput(t *testing.T) {
	env := map[string]string{"APIMDEV_HOME": testdir.New(t)}
	for _, tt := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"mine", "--path", "/mine"}, ExitUsage, []string{"needs --path /PATH and --backend URL"}},
		{[]string{"mine", "--backend", "http://mine:8080"}, ExitUsage, []string{"needs --path /PATH and --backend URL"}},
		{[]string{"Mine", "--path", "/mine", "--backend", "http://mine:8080"}, ExitFailure, []string{`API name "Mine" is not a DNS label`, "fix: use lower-case"}},
		{[]string{"mine", "--path", "/echo", "--backend", "http://mine:8080"}, ExitFailure, []string{"clashes with it", "fix: pick another name and path"}},
		{[]string{"mine", "--path", "/mine", "--backend", "mine:8080"}, ExitFailure, []string{"must start with http:// or https://", "fix: give the backend as http://HOST:PORT"}},
		{[]string{"mine", "--path", "/mine", "--backend", "http://mine:8080/?debug=1"}, ExitFailure, []string{"query", "fix: the gateway appends the caller's path and query"}},
		{[]string{"mine", "--path", "mine", "--backend", "http://mine:8080"}, ExitFailure, []string{`--path "mine" is not a path such as /mine`}},
	} {
		r := apimdev(t, env, "", append([]string{"demo", "api", "add"}, tt.args...)...)
		if r.code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, tt.code, r.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.err, w) {
				t.Errorf("%v: missing %q in %s", tt.args, w, r.err)
			}
		}
	}
}
