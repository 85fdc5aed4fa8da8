package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/gwlink"
)

// Lines as the real gateway logs them (../shared/reference/gateway-logs.md):
// 1.27 (CloudWithChris, 1.3.0.0) and the shape of 2.1 (PR #371's 403).
const (
	syncedLine  = "[Info] 2026-12-1T08:59:50.634 [ConfigInitialSyncCompleted], source: ConfigurationRepositoryProvider"
	refusedLine = `{"level":"Warning","timestamp":"2026-12-01T08:59:55.2622319Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://contoso.configuration.azure-api.net/gateways/contoso-gw/events?$top=100","exception":"Gateway.Configuration.Client.ApiException: StatusCode: Forbidden","source":"ConfigurationApiClient"}`
	requestLine = "[Info] 2026-12-1T08:59:58.100 [GatewayLogs], isRequestSuccess: True, responseCode: 200, category: GatewayLogs"
)

// kubelet puts each line after the kubelet's time, a second apart, ending
// at the world's now.
func kubelet(w *world, lines ...string) string {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", w.now.Add(time.Duration(i-len(lines))*time.Second).Format(time.RFC3339Nano), l)
	}
	return b.String()
}

func TestUpSaysTheLinkAndFailsWhenEveryPodIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.podLog = func(string) string { return kubelet(w, "version: 2.11.1", syncedLine, requestLine) }
	res := mustUp(t, w, UpOptions{})
	if len(res.Links) != 1 || res.Links[0].State != gwlink.Synced || res.Links[0].Event != "ConfigInitialSyncCompleted" {
		t.Fatalf("links after up: %+v", res.Links)
	}
	if !strings.Contains(w.log.text(), "smoke done 2 call(s) passed; configuration link synced (ConfigInitialSyncCompleted 2s ago)") {
		t.Fatalf("smoke does not say the link:\n%s", w.log.text())
	}

	// The key regenerated in the portal: the status path still answers,
	// the log says refused. up fails at smoke, naming it, with the fix.
	w.podLog = func(string) string { return kubelet(w, "version: 2.11.1", syncedLine, refusedLine) }
	w.log.reset()
	_, err := w.up(UpOptions{})
	var le *LinkError
	var fs *FailedStep
	if !errors.As(err, &le) || !errors.As(err, &fs) || fs.Step != StepSmoke || le.State != gwlink.Refused {
		t.Fatalf("up with every pod refused: %v\n%s", err, w.log.text())
	}
	if msg := err.Error(); !strings.Contains(msg, "refused on every pod (1)") || !strings.Contains(msg, "ConfigurationApiV2NotAvailable") || !strings.Contains(msg, "Forbidden") {
		t.Fatalf("the error does not name the refusal: %s", msg)
	}
	if le.Hint() == "" || !strings.Contains(le.Hint(), "token") {
		t.Fatalf("no fix naming the token: %q", le.Hint())
	}
	if st := w.session().Status(context.Background()); len(st.Links) != 1 || st.Links[0].State != gwlink.Refused {
		t.Fatalf("status' links: %+v (note %q)", st.Links, st.LinkNote)
	}
}

// On three pods, one refused and two synced is not a gateway cut off: up
// passes and says so per state; a silent pod is unknown, and warned of.
func TestLinksAcrossPodsAndASilentPod(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	first := ""
	w.podLog = func(pod string) string {
		if first == "" || first == pod {
			first = pod
			return kubelet(w, refusedLine)
		}
		return kubelet(w, syncedLine)
	}
	s := w.session()
	links, err := s.CheckLinks(context.Background(), nil)
	if err != nil || len(links) != 3 {
		t.Fatalf("links: %+v %v", links, err)
	}
	if got := LinkSummary(links, w.now); !strings.Contains(got, "refused on 1 of 3 pod(s)") || !strings.Contains(got, "synced on 2 of 3 pod(s)") {
		t.Fatalf("summary: %s", got)
	}

	w.podLog = func(string) string { return "" }
	w.log.reset()
	st := s.Rep.Start(StepSmoke, "")
	links, err = s.CheckLinks(context.Background(), st)
	if err != nil || len(links) != 3 || links[0].State != gwlink.Unknown {
		t.Fatalf("silent pods: %+v %v", links, err)
	}
	if !strings.Contains(w.log.text(), "smoke warn configuration link unknown on 3 of 3 pod(s)") {
		t.Fatalf("no warning of the unknown link:\n%s", w.log.text())
	}
}

// A long log is read at both ends: the first sync is in its head, its tail
// holds only requests.
func TestALongLogIsReadAtItsHeadToo(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	long := make([]string, linkTail)
	for i := range long {
		long[i] = requestLine
	}
	w.podLog = func(string) string { return kubelet(w, append([]string{syncedLine}, long...)...) }
	links, err := w.session().Links(context.Background())
	if err != nil || len(links) != 1 || links[0].State != gwlink.Synced {
		t.Fatalf("links of a long log: %+v %v", links, err)
	}
	var tail, head bool
	for _, o := range w.opened {
		tail = tail || o.TailLines != nil && *o.TailLines == linkTail
		head = head || o.LimitBytes != nil && *o.LimitBytes == linkHead
	}
	if !tail || !head {
		t.Fatalf("the log was not read at both ends: %+v", w.opened)
	}
}

// Unreachable on every pod is a warning, not a failure: such a pod serves
// what it has and retries, as after an engine restart (TestLifecycle).
func TestUnreachableEverywhereIsAWarning(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	unreachable := "[Error]2026-12-1T08:59:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve"
	w.podLog = func(string) string { return kubelet(w, syncedLine, unreachable) }
	w.log.reset()
	res, err := w.up(UpOptions{})
	if err != nil || len(res.Links) != 1 || res.Links[0].State != gwlink.Unreachable {
		t.Fatalf("up with the link unreachable: %+v %v\n%s", res, err, w.log.text())
	}
	if !strings.Contains(w.log.text(), "smoke warn configuration link unreachable on 1 of 1 pod(s)") {
		t.Fatalf("no warning of the unreachable link:\n%s", w.log.text())
	}
}
