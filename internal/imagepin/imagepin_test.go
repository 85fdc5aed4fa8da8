package imagepin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/events"
)

func TestNewestPatch(t *testing.T) {
	t.Parallel()
	tags := []string{"latest", "v2", "beta", "2.0.0", "2.9.3", "2.11.1", "2.10.9", "3.0.0-preview", "1.9.9", "2.11.0"}
	for floating, want := range map[string]string{"v2": "2.11.1", "latest": "2.11.1", "v1": "1.9.9", "v9": ""} {
		if got := NewestPatch(tags, floating); got != want {
			t.Errorf("NewestPatch(%s) = %q, want %q", floating, got, want)
		}
	}
}

type local struct {
	tags, digests []string
	found         bool
	platform      Platform
}

func (l local) Refs(context.Context, string) ([]string, []string, bool, error) {
	return l.tags, l.digests, l.found, nil
}

func (l local) Platform(context.Context, string) (Platform, bool, error) {
	return l.platform, l.found, nil
}

func TestPinUsesTheRegistryThenTheLocalImageThenRefusesWithTheFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := Pinner{Tags: func(context.Context, string) ([]string, error) { return []string{"2.10.0", "2.11.1", "v2"}, nil }}
	img, how, err := p.Pin(ctx, "mcr.microsoft.com/azure-api-management/gateway:v2")
	if err != nil || img != "mcr.microsoft.com/azure-api-management/gateway:2.11.1" || !strings.Contains(how, "tag list") {
		t.Fatalf("%s %s %v", img, how, err)
	}
	offline := func(context.Context, string) ([]string, error) { return nil, errors.New("dial tcp: no such host") }
	p = Pinner{Tags: offline, Local: local{tags: []string{"example/gw:v2", "example/gw:2.11.1-standin"}, found: true}}
	if img, how, err := p.Pin(ctx, "example/gw:v2"); err != nil || img != "example/gw:2.11.1-standin" || !strings.Contains(how, "same local image") {
		t.Fatalf("local tag: %s %s %v", img, how, err)
	}
	p = Pinner{Tags: offline, Local: local{digests: []string{"example/gw@sha256:abc"}, found: true}}
	if img, _, err := p.Pin(ctx, "example/gw:v2"); err != nil || img != "example/gw@sha256:abc" {
		t.Fatalf("local digest: %s %v", img, err)
	}
	p = Pinner{Tags: offline, Local: local{}}
	_, _, err = p.Pin(ctx, "mcr.microsoft.com/azure-api-management/gateway:latest")
	var h events.Hinter
	if err == nil || !strings.Contains(err.Error(), "out of reach") || !errors.As(err, &h) || !strings.Contains(h.Hint(), "--image mcr.microsoft.com/azure-api-management/gateway:2.11.1") {
		t.Fatalf("%v", err)
	}
	if img, how, _ := (Pinner{}).Pin(ctx, "x/gw:2.11.1"); img != "x/gw:2.11.1" || how != "already pinned" {
		t.Fatalf("%s %s", img, how)
	}
}

func TestRegistryAsksTheV2TagListThroughTheGivenClient(t *testing.T) {
	t.Parallel()
	var asked string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.Path
		_, _ = w.Write([]byte(`{"name":"azure-api-management/gateway","tags":["2.11.1","v2"]}`))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	tags, err := Registry{Client: srv.Client()}.Tags(context.Background(), host+"/azure-api-management/gateway")
	if err != nil || len(tags) != 2 || asked != "/v2/azure-api-management/gateway/tags/list" {
		t.Fatalf("%v %v %s", tags, err, asked)
	}
	if _, err := (Registry{}).Tags(context.Background(), "library/gw"); err == nil {
		t.Fatal("a repository without a registry host was asked for")
	}
}
