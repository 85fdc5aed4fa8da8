package podlogs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

// The pre-2.9 lines with a doubled quote after the timestamp are read as
// JSON objects once mended; lines cut short in the record are read field by
// field; valid lines are objects too.
func TestJSONLinesMendedOrReadLeniently(t *testing.T) {
	objects, lenient := 0, 0
	for _, c := range reference {
		if !strings.Contains(c.line, `{"level"`) {
			continue
		}
		e := Read(c.line)
		if e.JSON != nil {
			objects++
		} else {
			lenient++
		}
	}
	if objects != 7 || lenient != 2 {
		t.Errorf("%d JSON objects and %d lines read leniently, want 7 (1.29–1.34, 2.3) and 2 (2.1, 3.7)", objects, lenient)
	}
	e := Read(`{"level":"Verbose","timestamp":"2025-03-10T21:03:31.2426620Z"","eventType":"RequestReceived","apiId":"open-api","tags":0,"source":"SingleThreadedBackendChannelPool","message":"protocol=Http1"}`)
	if e.JSON == nil || e.JSON["apiId"] != "open-api" || len(e.Fields) != 2 || e.Fields[0] != [2]string{"apiId", "open-api"} {
		t.Errorf("fields of a mended line: %+v", e)
	}
}

func TestLevels(t *testing.T) {
	for in, want := range map[string]string{"verbose": "debug", "debug": "debug", "info": "info", "warn": "warn", "Warning": "warn", "error": "error", "": ""} {
		if got, err := Level(in); err != nil || got != want {
			t.Errorf("--level %q = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"fatal", "trace", "loud"} {
		_, err := Level(bad)
		if err == nil || !strings.Contains(err.Error(), "verbose, debug, info, warn (or warning) or error") {
			t.Errorf("--level %s: %v", bad, err)
		}
	}
	for line, want := range map[string]string{
		`{"level":"Verbose"}`: "debug", `{"level":"Information"}`: "info", `{"level":"Warning"}`: "warn", `{"level":"Fatal"}`: "error",
		"[Debug] 2021-06-3T03:25:12.586 [X]": "debug", "[Fatal]2021-06-3T03:25:12.586 [X]": "error", "[Warn] [X]": "warn",
	} {
		if got := Read(line).Level; got != want {
			t.Errorf("%s: level %q, want %q", line, got, want)
		}
	}
}

// groupLines runs lines, each "pod|text" at one-second steps, through a
// Grouper and returns the entries.
func groupLines(lines ...string) []Logged {
	var out []Logged
	g := &Grouper{Emit: func(l Logged) { out = append(out, l) }}
	for i, s := range lines {
		pod, text, _ := strings.Cut(s, "|")
		g.Add(Line{Time: t0.Add(time.Duration(i) * time.Second), Pod: pod, Text: text})
	}
	g.Flush()
	return out
}

// Two pods' lines interleave; each pod's stack frames stay with its entry,
// entries come out in the order of their first lines, and each has the
// kubelet time of its first line.
func TestGroupingInterleavedPods(t *testing.T) {
	got := groupLines(
		"a|[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve",
		"b|[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted], source: ConfigurationRepositoryProvider",
		"a|---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve",
		"b|   at Some.Frame()", // b's completed entry takes it: it is b's line
		"a|at System.Net.Http.ConnectHelper.ConnectAsync(String host, Int32 port, CancellationToken cancellationToken)",
		"a|at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean allowHttp2, CancellationToken cancellationToken)",
		"b|[Warn] 2021-06-3T03:25:12.570 [LoadBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider",
		"a|[Error]2022-10-12T02:54:48.369 [ConfigInitialSyncFailed], exception: Gateway.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json",
		"a|   --- End of stack trace from previous location ---",
		"a|version: 1.3.0.0",
	)
	var summary []string
	for _, l := range got {
		summary = append(summary, l.Pod+":"+l.Event+":"+l.Time.Format("05")+":"+string(rune('0'+len(l.Lines))))
	}
	if s := strings.Join(summary, " "); s != "a:Error:00:4 b:ConfigInitialSyncCompleted:01:2 b:LoadBackupLocationNotFound:06:1 a:ConfigInitialSyncFailed:07:2 a::09:1" {
		t.Fatalf("entries %s", s)
	}
	want := "System.Net.Http.HttpRequestException: Name does not resolve\n---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve\nat System.Net.Http.ConnectHelper"
	if !strings.HasPrefix(got[0].Exception, want) || strings.Count(got[0].Exception, "\n") != 3 {
		t.Errorf("exception of the grouped entry:\n%s", got[0].Exception)
	}
}

// With colour on (the gateway's default), an entry runs to its reset: the
// lines before it belong to it even when they look like nothing; the next
// coloured line starts the next entry.
func TestGroupingByColour(t *testing.T) {
	got := groupLines(
		"a|\x1b[31m[Error] 2021-06-3T03:25:12.586 [Error], exception: System.Exception: boom",
		"a|Some wrapped text",
		"a|   at X.Y()\x1b[0m",
		"a|plain line after the reset",
		"a|\x1b[37m[Info] 2021-06-3T03:25:13.041 [HostBootstrapperStarted]\x1b[0m",
		"a|\x1b[33m[Warn] 2021-06-3T03:25:13.376 [LoadBackupLocationNotFound], message: /apim/config, source: FileBackupProvider",
		"a|\x1b[37m[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted]\x1b[0m",
	)
	var n []int
	for _, l := range got {
		n = append(n, len(l.Lines))
		for _, x := range l.Lines {
			if strings.Contains(x, "\x1b") {
				t.Errorf("escape kept in %q", x)
			}
		}
	}
	if len(got) != 5 || n[0] != 3 || n[1] != 1 || n[2] != 1 || n[3] != 1 {
		t.Fatalf("entries %d, lines %v", len(got), n)
	}
	if got[0].Exception != "System.Exception: boom\nSome wrapped text\n   at X.Y()" {
		t.Errorf("exception %q", got[0].Exception)
	}
}

// The text face: event in brackets, source as a field, the exception's
// lines indented under the entry; the JSON face: one object per entry with
// the fields read and the lines.
func TestEntryFaces(t *testing.T) {
	got := groupLines(
		"contoso-gw-abc-8kxb2|\x1b[33m{\"level\":\"Warning\",\"timestamp\":\"2026-02-17T09:55:03.2622319Z\",\"eventType\":\"ConfigurationApiV2NotAvailable\",\"message\":\"The configuration V2 API is not reachable\",\"exception\":\"Gateway.Configuration.Client.ApiException: StatusCode: Forbidden\\n   at A.B()\",\"source\":\"ConfigurationApiClient\"}\x1b[0m",
		"contoso-gw-abc-8kxb2|[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve",
		"contoso-gw-abc-8kxb2|---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve",
	)
	if len(got) != 2 {
		t.Fatalf("%d entries", len(got))
	}
	text := got[0].Text(Short(got[0].Pod, "contoso-gw"))
	want := " abc-8kxb2 WARN  [ConfigurationApiV2NotAvailable] The configuration V2 API is not reachable source=ConfigurationApiClient\n    Gateway.Configuration.Client.ApiException: StatusCode: Forbidden\n       at A.B()"
	if !strings.HasSuffix(text, want) || strings.Contains(text, "\x1b") {
		t.Errorf("text\n%q\nwant suffix\n%q", text, want)
	}
	if text := got[1].Text("x"); !strings.HasSuffix(text, " x ERROR [Error]\n    System.Net.Http.HttpRequestException: Name does not resolve\n    ---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve") {
		t.Errorf("text %q", text)
	}
	b, err := got[1].JSON()
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j["level"] != "error" || j["event"] != "Error" || j["pod"] != "contoso-gw-abc-8kxb2" || !strings.HasSuffix(j["exception"].(string), "(0xFFFDFFFF): Name does not resolve") ||
		len(j["lines"].([]any)) != 2 || !strings.HasPrefix(j["log"].(string), "[Error]2021") {
		t.Errorf("json %s", b)
	}
	if b, _ := got[0].JSON(); !strings.Contains(string(b), `"log":{"eventType":"ConfigurationApiV2NotAvailable"`) || strings.Contains(string(b), `"lines"`) {
		t.Errorf("json %s", b)
	}
}

// Entries over Stream: two pods' dumps, a stack split between reads of
// the same pod, and the credential redacted before anything reads it.
func TestEntriesDump(t *testing.T) {
	cs := fake.NewClientset(pod("contoso-gw-abc-1"), pod("contoso-gw-abc-2"))
	st := &streams{text: map[string]string{
		"contoso-gw-abc-1": stamp(0, "[Error] 2021-06-3T03:25:12.586 [Error], exception: System.Net.Http.HttpRequestException: secret-x") +
			stamp(2*time.Second, "   at A.B()") + stamp(3*time.Second, "[Info] 2021-06-3T03:25:12.586 [ConfigInitialSyncCompleted]"),
		"contoso-gw-abc-2": stamp(time.Second, `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8288362Z"","eventType":"NoNewEvents","source":"EntityEventLoop"}`),
	}}
	var got []string
	var started []string
	err := Entries(context.Background(), Options{Client: cs, Namespace: "gw", Selector: "app=contoso-gw", Open: st.open,
		Redact: func(s string) string { return strings.ReplaceAll(s, "secret-x", "<redacted>") },
		Events: func(p string, s bool) {
			if s {
				started = append(started, p)
			}
		}},
		func(l Logged) { got = append(got, l.Pod[len("contoso-gw-abc-"):]+":"+l.Event+":"+l.Exception) })
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " | "); s != "1:Error:System.Net.Http.HttpRequestException: <redacted>\n   at A.B() | 2:NoNewEvents: | 1:ConfigInitialSyncCompleted:" {
		t.Errorf("entries %q", s)
	}
	if len(started) != 2 {
		t.Errorf("pods started %v", started)
	}
}

// Following, an entry whose pod says nothing more is closed after Reorder.
func TestGrouperCloseIdle(t *testing.T) {
	now := t0
	var got []Logged
	g := &Grouper{Emit: func(l Logged) { got = append(got, l) }, Now: func() time.Time { return now }}
	g.Add(Line{Time: t0, Pod: "a", Text: "[Error] [Error], exception: X: y"})
	g.Add(Line{Time: t0, Pod: "b", Text: "[Info] [NoNewEvents]"})
	g.Close(now.Add(-time.Second))
	if len(got) != 0 {
		t.Fatalf("emitted before idle: %+v", got)
	}
	now = now.Add(2 * time.Second)
	g.Add(Line{Time: t0.Add(2 * time.Second), Pod: "b", Text: "  at Z()"})
	g.Close(now.Add(-time.Second))
	if len(got) != 1 || got[0].Pod != "a" {
		t.Fatalf("a is idle and first: %+v", got)
	}
	g.Add(Line{Time: t0.Add(3 * time.Second), Pod: "a", Text: "  at late()"})
	g.Flush()
	if len(got) != 3 || len(got[1].Lines) != 2 || got[2].Lines[0] != "  at late()" {
		t.Fatalf("entries %+v", got)
	}
}

// Following, an entry and its frames come out once its pod has been quiet
// for Reorder, while the stream is still open; cancelling stops cleanly.
func TestEntriesFollowClosesQuietEntries(t *testing.T) {
	cs := fake.NewClientset(pod("contoso-gw-abc-1"))
	st := &streams{text: map[string]string{
		"contoso-gw-abc-1": stamp(0, "[Error] 2021-06-3T03:25:12.586 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve") +
			stamp(time.Millisecond, "   at A.B()"),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Logged, 4)
	done := make(chan error, 1)
	go func() {
		done <- Entries(ctx, Options{Client: cs, Namespace: "gw", Selector: "app=contoso-gw", Follow: true, Reorder: 50 * time.Millisecond, Open: st.open},
			func(l Logged) { got <- l })
	}()
	select {
	case l := <-got:
		if len(l.Lines) != 2 || l.Event != "Error" {
			t.Errorf("entry %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the quiet entry was not emitted while following")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop")
	}
	if len(got) != 0 {
		t.Errorf("more entries: %d", len(got))
	}
}
