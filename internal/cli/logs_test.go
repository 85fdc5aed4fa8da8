package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/podlogs"
	"github.com/apimdev/apimdev/internal/testdir"
)

var logT0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// cannedEntries stands for podlogs.Entries: pods are read (Events), their
// lines ("pod|text", a second apart) redacted and grouped as podlogs does.
func cannedEntries(pods []string, lines ...string) func(context.Context, podlogs.Options, func(podlogs.Logged)) error {
	return func(_ context.Context, o podlogs.Options, emit func(podlogs.Logged)) error {
		for _, p := range pods {
			o.Events(p, true)
		}
		g := &podlogs.Grouper{Emit: emit}
		for i, s := range lines {
			pod, text, _ := strings.Cut(s, "|")
			if o.Redact != nil {
				text = o.Redact(text)
			}
			g.Add(podlogs.Line{Time: logT0.Add(time.Duration(i) * time.Second), Pod: pod, Text: text})
		}
		g.Flush()
		for _, p := range pods {
			o.Events(p, false)
		}
		return nil
	}
}

var gatewayLines = []string{
	"contoso-gw-6b88-8kxb2|\x1b[37m[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider\x1b[0m",
	"contoso-gw-6b88-q7wz1|\x1b[31m[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve",
	"contoso-gw-6b88-8kxb2|\x1b[37m[Info] 2021-06-3T03:25:14.634 [Error], exception: System.Exception: info-level exception",
	"contoso-gw-6b88-8kxb2|   at Info.Frame()\x1b[0m",
	"contoso-gw-6b88-q7wz1|---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve",
	"contoso-gw-6b88-q7wz1|at System.Net.Http.ConnectHelper.ConnectAsync(String host, Int32 port, CancellationToken cancellationToken)\x1b[0m",
	`contoso-gw-6b88-8kxb2|{"level":"Warning","timestamp":"2026-02-17T09:55:03.2622319Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable","exception":"Gateway.Configuration.Client.ApiException: StatusCode: Forbidden","source":"ConfigurationApiClient"}`,
}

// --level warn keeps the error and the warning with their exception's
// lines indented under them, drops the info entries with theirs; the event
// is shown, the gateway's colours are not.
func TestLogsTextFiltersEntriesWithTheirLines(t *testing.T) {
	var out, errb bytes.Buffer
	v := logView{min: "warn", deployment: "contoso-gw-6b88"}
	err := v.show(context.Background(), &out, &errb, podlogs.Options{}, cannedEntries([]string{"contoso-gw-6b88-8kxb2", "contoso-gw-6b88-q7wz1"}, gatewayLines...))
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		" q7wz1 ERROR [Error]\n    System.Net.Http.HttpRequestException: Name does not resolve\n    ---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve\n    at System.Net.Http.ConnectHelper.ConnectAsync(",
		" 8kxb2 WARN  [ConfigurationApiV2NotAvailable] The configuration V2 API is not reachable source=ConfigurationApiClient\n    Gateway.Configuration.Client.ApiException: StatusCode: Forbidden\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing\n%s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "ConfigInitialSyncStarted") || strings.Contains(got, "Info.Frame") || strings.Contains(got, "\x1b") || strings.Count(got, "\n") != 6 {
		t.Errorf("filtered or escaped badly:\n%q", got)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr %q", errb.String())
	}
}

func TestLogsJSONOneObjectPerEntry(t *testing.T) {
	var out, errb bytes.Buffer
	v := logView{json: true, deployment: "contoso-gw-6b88"}
	if err := v.show(context.Background(), &out, &errb, podlogs.Options{}, cannedEntries([]string{"contoso-gw-6b88-8kxb2", "contoso-gw-6b88-q7wz1"}, gatewayLines...)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d objects:\n%s", len(lines), out.String())
	}
	var e struct {
		Pod, Level, Event, Exception string
		Lines                        []string
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Pod != "contoso-gw-6b88-q7wz1" || e.Level != "error" || e.Event != "Error" || len(e.Lines) != 3 || strings.Count(e.Exception, "\n") != 2 {
		t.Errorf("entry %+v", e)
	}
}

// When a dump shows nothing, stderr says why: the level, the window, the
// pods, and the prod profile's quiet level.
func TestLogsSaysWhyNothingWasShown(t *testing.T) {
	pods := []string{"contoso-gw-6b88-a", "contoso-gw-6b88-b", "contoso-gw-6b88-c"}
	for _, c := range []struct {
		name  string
		v     logView
		o     podlogs.Options
		pods  []string
		lines []string
		want  string
	}{
		{"prod at warn, quiet", logView{min: "warn", profile: "prod", profileLevel: "warn"}, podlogs.Options{Since: 5 * time.Minute}, pods, nil,
			"no line at warn or above in the last 5m from 3 pod(s); the prod profile logs at warn (telemetry.logs.std.level), so a quiet gateway prints nothing: try --level info on dev, or a longer --since\n"},
		{"dev, all below the level", logView{min: "warn", profile: "dev"}, podlogs.Options{Since: time.Hour}, pods[:1],
			[]string{"contoso-gw-6b88-a|[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted]", "contoso-gw-6b88-a|[Info] 2021-06-3T03:25:14.636 [TenantStarted]"},
			"no line at warn or above in the last 1h from 1 pod(s) (2 entries below it); try --level info\n"},
		{"no line at all", logView{}, podlogs.Options{Since: 90 * time.Second}, pods[:2], nil, "no line in the last 1m30s from 2 pod(s); try a longer --since\n"},
		{"no pod", logView{min: "error"}, podlogs.Options{}, nil, nil, "no line: no pod of the gateway has a container to read yet; see apimdev status\n"},
		{"no previous container", logView{}, podlogs.Options{Previous: true}, nil, nil, "no line: no pod of the gateway has a previous container (none has restarted)\n"},
		{"following says nothing", logView{min: "error"}, podlogs.Options{Follow: true}, pods, nil, "# following contoso-gw-6b88-a\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := c.v.show(context.Background(), &out, &errb, c.o, cannedEntries(c.pods, c.lines...)); err != nil {
				t.Fatal(err)
			}
			got := errb.String()
			if c.o.Follow {
				got, _, _ = strings.Cut(got, "# following contoso-gw-6b88-b")
			}
			if out.Len() != 0 || got != c.want {
				t.Errorf("stdout %q\nstderr %q\nwant   %q", out.String(), got, c.want)
			}
		})
	}
}

func TestLogsLevelIsChecked(t *testing.T) {
	r := apimdev(t, map[string]string{"APIMDEV_HOME": testdir.New(t)}, "", "logs", "--level", "loud")
	if r.code != ExitUsage || !strings.Contains(r.err, "use verbose, debug, info, warn (or warning) or error") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
}
