package apimconfig

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewRoundTrip(t *testing.T) {
	t.Parallel()
	c := New("gw-1", []string{"key-a", "key-b"})
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "key-a") {
		t.Fatalf("configuration carries a subscription key in clear: %s", data)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode() = %v", err)
	}
	if got.Revision != c.Revision || got.Revision == "" {
		t.Fatalf("revision changed on round trip: %q -> %q", c.Revision, got.Revision)
	}
	if other := New("gw-1", []string{"key-a"}); other.Revision == c.Revision {
		t.Fatal("different subscriptions produced the same revision")
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	c := New("gw-1", nil)
	c.APIs = append(c.APIs, API{Name: "deep", Path: "/echo/deep", Kind: KindEcho})
	tests := []struct {
		path, want string
	}{
		{"/echo", "echo"},
		{"/echo/", "echo"},
		{"/echo/a/b", "echo"},
		{"/echo/deep/x", "deep"},
		{"/echoes", ""},
		{"/", ""},
	}
	for _, tc := range tests {
		a, ok := c.Match(tc.path)
		if got := a.Name; ok != (tc.want != "") || got != tc.want {
			t.Errorf("Match(%q) = %q, %v; want %q", tc.path, got, ok, tc.want)
		}
	}
}

func TestSubscriptionFor(t *testing.T) {
	t.Parallel()
	c := New("gw-1", []string{"key-a", "key-b"})
	if name, ok := c.SubscriptionFor("key-b"); !ok || name != "subscription-2" {
		t.Fatalf("SubscriptionFor(key-b) = %q, %v", name, ok)
	}
	for _, k := range []string{"", "key-c", "KEY-A"} {
		if _, ok := c.SubscriptionFor(k); ok {
			t.Errorf("SubscriptionFor(%q) accepted a key that is not configured", k)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not json":       `{`,
		"no gateway":     `{"apis":[]}`,
		"bad path":       `{"gatewayId":"g","apis":[{"name":"a","path":"echo","kind":"echo"}]}`,
		"trailing slash": `{"gatewayId":"g","apis":[{"name":"a","path":"/echo/","kind":"echo"}]}`,
		"unknown kind":   `{"gatewayId":"g","apis":[{"name":"a","path":"/a","kind":"soap"}]}`,
		"bad hash":       `{"gatewayId":"g","subscriptions":[{"name":"s","keySha256":"xyz"}]}`,
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Decode([]byte(doc)); err == nil {
				t.Fatalf("Decode(%s) accepted an invalid document", doc)
			}
		})
	}
}

func TestParseAPIs(t *testing.T) {
	t.Parallel()
	apis, err := ParseAPIs([]byte(`[{"name":"mine","path":"/mine","backendUrl":"http://mine:8080"},
		{"name":"open","path":"/v1/open","backendUrl":"https://open.example:8443/base","subscriptionRequired":false}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []API{
		{Name: "mine", Path: "/mine", Kind: KindProxy, SubscriptionRequired: true, BackendURL: "http://mine:8080"},
		{Name: "open", Path: "/v1/open", Kind: KindProxy, SubscriptionRequired: false, BackendURL: "https://open.example:8443/base"},
	}
	if len(apis) != 2 || apis[0] != want[0] || apis[1] != want[1] {
		t.Fatalf("ParseAPIs = %+v, want %+v", apis, want)
	}
	if apis, err := ParseAPIs([]byte("  ")); err != nil || apis != nil {
		t.Errorf("empty list = %v, %v", apis, err)
	}
	// Each bad entry is named in the error.
	for _, tc := range []struct{ in, want string }{
		{`{"name":"x"}`, "not a JSON list"},
		{`[{"name":"x","path":"/x","backendUrl":"http://x","extra":1}]`, "unknown field"},
		{`[{"name":"Mine","path":"/mine","backendUrl":"http://x"}]`, "DNS label"},
		{`[{"name":"mine","path":"mine","backendUrl":"http://x"}]`, "must be /segment"},
		{`[{"name":"mine","path":"/mine/","backendUrl":"http://x"}]`, "must be /segment"},
		{`[{"name":"mine","path":"/mi ne","backendUrl":"http://x"}]`, "must be /segment"},
		{`[{"name":"mine","path":"/echo","backendUrl":"http://x"}]`, `path /echo is api "echo"'s already`},
		{`[{"name":"mine","path":"/ECHO","backendUrl":"http://x"}]`, `is api "echo"'s already`},
		{`[{"name":"echo","path":"/other","backendUrl":"http://x"}]`, "two APIs have that name"},
		{`[{"name":"a","path":"/a","backendUrl":"http://x"},{"name":"b","path":"/a","backendUrl":"http://y"}]`, `is api "a"'s already`},
		{`[{"name":"mine","path":"/mine","backendUrl":""}]`, "backendUrl is empty"},
		{`[{"name":"mine","path":"/mine","backendUrl":"ftp://x"}]`, "must start with http:// or https://"},
		{`[{"name":"mine","path":"/mine","backendUrl":"mine:8080"}]`, "must start with http"},
		{`[{"name":"mine","path":"/mine","backendUrl":"http:///x"}]`, "has no host"},
		{`[{"name":"mine","path":"/mine","backendUrl":"http://u:p@x"}]`, "no user, query or fragment"},
		{`[{"name":"mine","path":"/mine","backendUrl":"http://x/?a=1"}]`, "no user, query or fragment"},
		{`[{"name":"mine","path":"/mine","backendUrl":"http://x:99999"}]`, "not 1-65535"},
	} {
		if _, err := ParseAPIs([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAPIs(%s) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestProxyAPIsChangeTheRevisionAndRoundTrip(t *testing.T) {
	t.Parallel()
	plain := New("gw-1", []string{"k"})
	mine := API{Name: "mine", Path: "/mine", Kind: KindProxy, SubscriptionRequired: true, BackendURL: "http://mine:8080"}
	with := New("gw-1", []string{"k"}, mine)
	if with.Revision == plain.Revision {
		t.Fatal("adding an API kept the revision")
	}
	moved := mine
	moved.BackendURL = "http://mine:9090"
	if New("gw-1", []string{"k"}, moved).Revision == with.Revision {
		t.Fatal("a new backend URL kept the revision")
	}
	data, _ := json.Marshal(with)
	got, err := Decode(data)
	if err != nil || len(got.APIs) != 2 || got.APIs[1] != mine {
		t.Fatalf("Decode = %+v, %v", got.APIs, err)
	}
	// The echo-only document has no backendUrl field at all: its revision is
	// what gateways already running have backed up.
	if b, _ := json.Marshal(plain); strings.Contains(string(b), "backendUrl") {
		t.Errorf("echo-only document: %s", b)
	}
	echoWithBackend := New("gw-1", nil)
	echoWithBackend.APIs[0].BackendURL = "http://x"
	if err := echoWithBackend.Validate(); err == nil {
		t.Error("an echo API with a backend URL validated")
	}
}
