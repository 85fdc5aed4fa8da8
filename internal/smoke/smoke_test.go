package smoke

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// gatewayish answers like the gateway: health, an echo API behind a key, and
// 200-with-empty-body when "expired".
func gatewayish(expired bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/status-0123456789abcdef":
			fmt.Fprint(w, "ok")
		case strings.HasPrefix(r.URL.Path, "/echo/"):
			if r.Header.Get("Ocp-Apim-Subscription-Key") != "k-123" {
				w.WriteHeader(401)
				fmt.Fprint(w, `{"statusCode":401}`)
				return
			}
			if expired {
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "n": 3, "h": map[string]any{"a": []any{"x"}}})
		default:
			w.WriteHeader(404)
		}
	})
}

func runner(t *testing.T, expired bool) *Runner {
	plain := httptest.NewServer(gatewayish(expired))
	tlsS := httptest.NewTLSServer(gatewayish(expired))
	t.Cleanup(plain.Close)
	t.Cleanup(tlsS.Close)
	return &Runner{HTTPBase: plain.URL, HTTPSBase: tlsS.URL, ProbePath: "/status-0123456789abcdef", TokenExpired: expired,
		Expand: Expander{Getenv: func(k string) string { return map[string]string{"APIM_SUBSCRIPTION_KEY": "k-123"}[k] }}}
}

func TestSpecFile(t *testing.T) {
	t.Parallel()
	s, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := runner(t, false)
	res := r.Run(context.Background(), append(r.HealthCalls(), s.Calls...))
	for _, x := range res {
		if !x.Pass {
			t.Errorf("%s: %s", x.Name, x.Reason)
		}
	}
	if !strings.Contains(res[1].Note, "TLS verification off") || res[0].Note != "" {
		t.Errorf("https note: %q / %q", res[1].Note, res[0].Note)
	}
}

func TestJudgement(t *testing.T) {
	t.Parallel()
	key := map[string]string{"Ocp-Apim-Subscription-Key": "${APIM_SUBSCRIPTION_KEY}"}
	tests := []struct {
		name    string
		expired bool
		call    Call
		want    string // "" = pass
	}{
		{"status mismatch", false, Call{Name: "x", Path: "/echo/a"}, "status 401, expected 200 (the gateway wants a subscription key"},
		{"404 hint", false, Call{Name: "x", Path: "/nope"}, "is the API assigned to the gateway"},
		{"body contains", false, Call{Name: "x", Path: "/echo/a", Headers: key, Expect: Expect{BodyContains: "zzz"}}, `body does not contain "zzz"`},
		{"json ok", false, Call{Name: "x", Path: "/echo/a", Headers: key, Expect: Expect{JSON: map[string]string{"n": "3", "h.a.0": "x", "path": "/echo/a"}}}, ""},
		{"json wrong", false, Call{Name: "x", Path: "/echo/a", Headers: key, Expect: Expect{JSON: map[string]string{"method": "POST"}}}, `JSON field method is "GET", expected "POST"`},
		{"json missing", false, Call{Name: "x", Path: "/echo/a", Headers: key, Expect: Expect{JSON: map[string]string{"h.b": "1"}}}, "JSON field h.b is missing"},
		{"empty body, token expired", true, Call{Name: "x", Path: "/echo/a", Headers: key, Expect: Expect{BodyContains: "a"}}, "200 with an empty body: the gateway token has expired"},
		{"empty body passes a status-only check", true, Call{Name: "x", Path: "/echo/a", Headers: key}, ""},
		{"post body", false, Call{Name: "x", Method: "post", Path: "/echo/a", Headers: key, Body: "{}", Expect: Expect{JSON: map[string]string{"method": "POST"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runner(t, tt.expired).Run(context.Background(), []Call{tt.call})[0]
			if tt.want == "" {
				if !res.Pass {
					t.Fatalf("failed: %s", res.Reason)
				}
				return
			}
			if res.Pass || !strings.Contains(res.Reason, tt.want) {
				t.Fatalf("reason %q, want %q", res.Reason, tt.want)
			}
		})
	}
}

func TestNoAnswer(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close()
	r := &Runner{HTTPBase: url, ProbePath: "/status-0123456789abcdef"}
	res := r.Run(context.Background(), r.HealthCalls()[:1])
	if res[0].Pass || !strings.Contains(res[0].Reason, "no answer") {
		t.Fatalf("%+v", res[0])
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	Table(&b, []Result{{Name: "health (http)", Status: 200, LatencyMS: 1.25, Pass: true}, {Name: "echo", Status: 200, Reason: "200 with an empty body"}})
	out := b.String()
	for _, w := range []string{"CALL", "health (http)  200     1.2ms", "FAIL: 200 with an empty body", "1 passed, 1 failed"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in\n%s", w, out)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	in := `apiVersion: apimdev.io/v1alpha1
kind: SmokeSpec
calls:
  - name: a
    path: nope
    port: ftp
    method: FETCH
    expect: {status: 999}
  - name: a
    path: /x
`
	_, err := Parse("s.yaml", strings.NewReader(in))
	for _, w := range []string{"must start with '/'", `port "ftp"`, `method "FETCH"`, "expect.status 999", `name "a" is used twice`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	if _, err := Parse("s.yaml", strings.NewReader("apiVersion: apimdev.io/v1alpha1\nkind: SmokeSpec\ncals: []\n")); err == nil || !strings.Contains(err.Error(), "cals") {
		t.Errorf("unknown field: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/valid.yaml")
	f.Add(string(b))
	f.Add("calls: [{name: a, path: /, expect: {json: {a: b}}}]")
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse("f.yaml", strings.NewReader(s))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range spec.Calls {
			if !strings.HasPrefix(c.Path, "/") || c.Name == "" || seen[c.Name] {
				t.Fatalf("accepted an invalid call %+v", c)
			}
			seen[c.Name] = true
			if c.Port != "" && c.Port != "http" && c.Port != "https" {
				t.Fatalf("accepted port %q", c.Port)
			}
			if m := strings.ToUpper(c.Method); m != "" && !validMethod[m] {
				t.Fatalf("accepted method %q", c.Method)
			}
			if st := c.Expect.Status; st != 0 && (st < 100 || st > 599) {
				t.Fatalf("accepted status %d", st)
			}
		}
	})
}
