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
