package standinlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fixed clocks: one before noon, one after (the text format's 12-hour clock
// writes both as 03), and a day below 10 (written without a leading zero).
var (
	morning   = time.Date(2026, 6, 3, 3, 25, 13, 690_123_456, time.UTC)
	afternoon = time.Date(2026, 6, 3, 15, 25, 37, 815_000_000, time.UTC)
)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func newAt(t *testing.T, at time.Time, s Settings) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	s.Now = fixed(at)
	log, problems := New(&buf, s)
	if len(problems) != 0 {
		t.Fatalf("unexpected problems: %v", problems)
	}
	return log, &buf
}

func TestTextExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		at    time.Time
		color string
		log   func(*slog.Logger)
		want  string
	}{
		{"info, colour on by default", morning, "", func(l *slog.Logger) {
			l.Info("", Event("ConfigInitialSyncStarted"), Source("ConfigurationRepositoryProvider"))
		}, "\x1b[37m[Info] 2026-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider (stand-in, not Azure API Management)\x1b[0m\n"},
		{"after noon the hour is 03 too", afternoon, "false", func(l *slog.Logger) {
			l.Info("", Event("ConfigInitialSyncStarted"), Source("ConfigurationRepositoryProvider"))
		}, "[Info] 2026-06-3T03:25:37.815 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider (stand-in, not Azure API Management)\n"},
		{"warn: message before source, yellow", morning, "true", func(l *slog.Logger) {
			l.Warn("/apim/config", Event("LocalBackupLocationNotFound"), Source("BackupMetadataProvider"))
		}, "\x1b[33m[Warn] 2026-06-3T03:25:13.690 [LocalBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider (stand-in, not Azure API Management)\x1b[0m\n"},
		{"error: message, exception, source, then fields; the stack on its own lines inside the colour", morning, "", func(l *slog.Logger) {
			l.Error("configuration endpoint unreachable", Event("Error"), Source("ConfigurationApiClient"),
				Exception("System.Net.Http.HttpRequestException: Name does not resolve\n ---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve\n   at X.Y()"),
				"ready", false, "n", 3)
		}, "\x1b[31m[Error] 2026-06-3T03:25:13.690 [Error], message: configuration endpoint unreachable, exception: System.Net.Http.HttpRequestException: Name does not resolve, source: ConfigurationApiClient (stand-in, not Azure API Management), ready: False, n: 3\n" +
			" ---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve\n   at X.Y()\x1b[0m\n"},
		{"multi-line exception without colour", morning, "false", func(l *slog.Logger) {
			l.Error("", Event("ConfigInitialSyncFailed"), Source("ConfigurationRepositoryProvider"), Exception("A: b\n   at C.D()"))
		}, "[Error] 2026-06-3T03:25:13.690 [ConfigInitialSyncFailed], exception: A: b, source: ConfigurationRepositoryProvider (stand-in, not Azure API Management)\n   at C.D()\n"},
		{"verbose is [Debug]; no event named; a newline in a field stays on the line", morning, "false", func(l *slog.Logger) {
			l.Debug("two\nlines", "k", "v\nw")
		}, "[Debug] 2026-06-3T03:25:13.690 [StandinUnnamedEvent], message: two\\nlines, source: gateway (stand-in, not Azure API Management), k: v\\nw\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, buf := newAt(t, tc.at, Settings{Level: "debug", Color: tc.color, Mode: "gateway"})
			tc.log(log)
			if got := buf.String(); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestJSONExact(t *testing.T) {
	t.Parallel()
	// Colour does not apply to JSON: each line must parse.
	log, buf := newAt(t, morning, Settings{Format: "json", Level: "all", Mode: "gateway"})
	log.Debug("", Event("NoNewEvents"), Source("EntityEventLoop"))
	log.Warn("The configuration V2 API is not reachable on https://h/configuration", Event("ConfigurationApiV2NotAvailable"), Source("ConfigurationApiClient"),
		Exception("Gateway.Configuration.Client.ApiException: StatusCode: Forbidden"))
	log.Error("", Event("Error"), Source("ConfigurationApiClient"), Exception("A: b\n ---> C: d"), "ready", false, "err", errors.New("e"))
	log.Info("", Event("GatewayLogs"), Source("GatewayLogs"), "isRequestSuccess", true, "totalTime", int64(4), "url", "http://h/echo/x", "responseCode", 200)
	want := `{"level":"Verbose","timestamp":"2026-06-03T03:25:13.6901234Z","eventType":"NoNewEvents","source":"EntityEventLoop (stand-in, not Azure API Management)"}
{"level":"Warning","timestamp":"2026-06-03T03:25:13.6901234Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://h/configuration","exception":"Gateway.Configuration.Client.ApiException: StatusCode: Forbidden","source":"ConfigurationApiClient (stand-in, not Azure API Management)"}
{"level":"Error","timestamp":"2026-06-03T03:25:13.6901234Z","eventType":"Error","exception":"A: b\n ---> C: d","source":"ConfigurationApiClient (stand-in, not Azure API Management)","ready":false,"err":"e"}
{"level":"Info","timestamp":"2026-06-03T03:25:13.6901234Z","eventType":"GatewayLogs","source":"GatewayLogs (stand-in, not Azure API Management)","isRequestSuccess":true,"totalTime":4,"url":"http://h/echo/x","responseCode":200}
`
	if got := buf.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
	}
	// The afternoon keeps its 24-hour clock in JSON.
	log, buf = newAt(t, afternoon, Settings{Format: "json"})
	log.Info("x", Event("E"))
	if !strings.Contains(buf.String(), `"timestamp":"2026-06-03T15:25:37.8150000Z"`) {
		t.Errorf("timestamp: %s", buf)
	}
}

// Every entry is marked stand-in, whichever source, attributes or groups the
// caller used, in both formats.
func TestEveryLineMarked(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		log, buf := newAt(t, morning, Settings{Format: format, Level: "debug", Mode: "config-service"})
		log.Info("plain")
		log.With(Source("A")).Warn("with", "k", 1)
		log.WithGroup("g").Error("grouped", Source("B"), slog.Group("h", "x", 1))
		log.With(Event("Q")).Debug("", Source(""))
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%s: want 4 lines, got %q", format, buf)
		}
		for _, l := range lines {
			if !strings.Contains(l, SourceMark) {
				t.Errorf("%s: line not marked: %q", format, l)
			}
		}
		if !strings.Contains(buf.String(), "g.h.x") {
			t.Errorf("%s: group keys not qualified: %s", format, buf)
		}
	}
}

func TestLevelsAndFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		s            Settings
		wantProblems int
		wantDebug    bool
		wantWarn     bool
		wantError    bool
	}{
		{"defaults", Settings{}, 0, false, true, true},
		{"all", Settings{Level: "all"}, 0, true, true, true},
		{"debug", Settings{Level: "debug"}, 0, true, true, true},
		{"warn", Settings{Level: "WARN"}, 0, false, true, true},
		{"error", Settings{Level: "error"}, 0, false, false, true},
		{"fatal keeps errors", Settings{Level: "fatal"}, 0, false, false, true},
		{"bad level", Settings{Level: "loud"}, 1, false, true, true},
		{"bad format", Settings{Format: "xml", Level: "debug"}, 1, true, true, true},
		{"bad colour", Settings{Color: "maybe"}, 1, false, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log, problems := New(&buf, tc.s)
			if len(problems) != tc.wantProblems {
				t.Fatalf("problems = %v, want %d", problems, tc.wantProblems)
			}
			log.Debug("dbg")
			log.Warn("wrn")
			log.Error("err")
			out := buf.String()
			if strings.Contains(out, "dbg") != tc.wantDebug || strings.Contains(out, "wrn") != tc.wantWarn || strings.Contains(out, "err") != tc.wantError {
				t.Fatalf("output %q: want debug=%v warn=%v error=%v", out, tc.wantDebug, tc.wantWarn, tc.wantError)
			}
		})
	}
}

func TestBanner(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Banner(&buf, "2.11.1-standin"); err != nil {
		t.Fatal(err)
	}
	want := "version: 2.11.1-standin\nstand-in gateway, not Azure API Management (test infrastructure)\n"
	if buf.String() != want {
		t.Fatalf("banner %q, want %q", buf.String(), want)
	}
}

// The link states' events are the record's names, levels and sources; the one
// the record lacks is marked as the stand-in's own.
func TestEventTable(t *testing.T) {
	t.Parallel()
	want := map[string]struct{ event, level, source string }{
		"start":                                {"HostBootstrapperStarting", "Info", SrcHost},
		"started, listening":                   {"HostBootstrapperStarted", "Info", SrcHost},
		"endpoint set":                         {"ConfigStarted", "Info", "CompositeConfigurationRepositoryProvider"},
		"endpoint or token not set":            {"GatewayStartup", "Error", SrcHost},
		"sync started":                         {"ConfigInitialSyncStarted", "Info", "ConfigurationRepositoryProvider"},
		"sync completed":                       {"ConfigInitialSyncCompleted", "Info", "ConfigurationRepositoryProvider"},
		"polling":                              {"GettingEventsFromApi", "Verbose", "ConfigurationApiClient"},
		"polled, no change":                    {"NoNewEvents", "Verbose", "EntityEventLoop"},
		"refused (401/403)":                    {"ConfigurationApiV2NotAvailable", "Warning", "ConfigurationApiClient"},
		"unreachable (DNS, TCP, timeout, 5xx)": {"Error", "Error", "ConfigurationApiClient"},
		"untrusted (TLS)":                      {"Error", "Error", "ConfigurationApiClient"},
		"backup missing":                       {"LocalBackupLocationNotFound", "Warning", "BackupMetadataProvider"},
		"initial sync failed, empty backup":    {"ConfigInitialSyncFailed", "Error", "ConfigurationRepositoryProvider"},
		"started from backup":                  {"StandinConfigRestoredFromBackup", "Warning", "FileBackupProvider"},
		"request":                              {"GatewayLogs", "Info", "GatewayLogs"},
		"proxy API: backend refused, reset, unresolvable (502)": {"GatewayLogs", "Info", "GatewayLogs"},
		"proxy API: backend timeout (504)":                      {"GatewayLogs", "Info", "GatewayLogs"},
	}
	if len(Table) != len(want) {
		t.Errorf("table has %d rows, want %d", len(Table), len(want))
	}
	for _, r := range Table {
		w, ok := want[r.State]
		if !ok {
			t.Errorf("unexpected state %q", r.State)
			continue
		}
		if r.Event != w.event || r.Level != w.level || r.Source != w.source {
			t.Errorf("%s: %s/%s/%s, want %s/%s/%s", r.State, r.Event, r.Level, r.Source, w.event, w.level, w.source)
		}
		own := strings.HasPrefix(r.Event, "Standin")
		if own != strings.Contains(r.Record, "stand-in's own") {
			t.Errorf("%s: event %s and record %q disagree on whether it is the stand-in's own", r.State, r.Event, r.Record)
		}
	}
}

// README.md repeats the table; it must not drift from the code.
func TestReadmeListsEveryEvent(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Table {
		row := "| " + r.State + " | `" + r.Event + "` | " + r.Level + " | " + r.Source + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
}
