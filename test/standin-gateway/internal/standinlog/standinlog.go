// Package standinlog builds the stand-in's logger from the gateway's own
// telemetry settings. It writes what the real self-hosted gateway (2.x) writes
// to stdout: by default text entries such as
//
//	[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider
//
// wrapped in ANSI colours, or, with telemetry.logs.std=json, one JSON object a
// line with level, timestamp, eventType, message, exception and source. Every
// entry still says it comes from a stand-in, in one place: its source ends in
// SourceMark, so no one mistakes these logs for Azure API Management's.
//
// A call names its event and component with Event and Source (slog attributes
// the handler consumes) and may carry an Exception; events.go lists the names
// and the record each comes from.
package standinlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Marker is the stand-in's label, as the HTTP header X-Apimdev-Standin says it.
const Marker = "stand-in gateway, not Azure API Management"

// SourceMark ends every entry's source: "ConfigurationApiClient (stand-in, not
// Azure API Management)". The real gateway's source is a component name; the
// stand-in keeps that name first so a reader matching on it still can.
const SourceMark = " (stand-in, not Azure API Management)"

// The attribute keys the handler consumes rather than writes as fields.
const (
	KeyEvent     = "event"
	KeySource    = "source"
	KeyException = "exception"
)

// Event names the entry's event ("[EventName]" in text, eventType in JSON).
func Event(name string) slog.Attr { return slog.String(KeyEvent, name) }

// Source names the component that logs (without the stand-in mark; the handler adds it).
func Source(component string) slog.Attr { return slog.String(KeySource, component) }

// Exception is the entry's exception: a .NET-style type and message, and
// optionally more lines (inner exceptions, stack frames) after newlines.
func Exception(text string) slog.Attr { return slog.String(KeyException, text) }

// UnnamedEvent is the event of an entry logged without Event (a bug in the
// stand-in, or a standard-library logger it bridges).
const UnnamedEvent = "StandinUnnamedEvent"

// Settings mirror the gateway's telemetry.logs.std, telemetry.logs.std.level
// and telemetry.logs.std.color.
type Settings struct {
	Format string // "json" or "text" (default; anything else: text)
	Level  string // all, debug, info (default), warn, error, fatal
	Color  string // "false" turns the text format's ANSI colours off; default on
	Mode   string // which stand-in mode logs: the source of entries that name none
	// Now is the clock timestamps come from; nil is time.Now.
	Now func() time.Time
}

// New returns a logger writing to w. Problems with the settings do not stop the
// stand-in; they are returned so the caller can log them with the logger it got.
func New(w io.Writer, s Settings) (*slog.Logger, []string) {
	var problems []string
	level, err := parseLevel(s.Level)
	if err != nil {
		problems = append(problems, err.Error())
	}
	isJSON := false
	switch strings.ToLower(strings.TrimSpace(s.Format)) {
	case "json":
		isJSON = true
	case "", "text":
	default:
		problems = append(problems, fmt.Sprintf("telemetry.logs.std=%q is not json or text; logging text", s.Format))
	}
	color := true
	switch strings.ToLower(strings.TrimSpace(s.Color)) {
	case "", "true":
	case "false":
		color = false
	default:
		problems = append(problems, fmt.Sprintf("telemetry.logs.std.color=%q is not true or false; colours on", s.Color))
	}
	source := s.Mode
	if source == "" {
		source = "standin"
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	h := &Handler{out: &output{w: w}, level: level, json: isJSON, color: color, now: now,
		source: source}
	return slog.New(h), problems
}

// Discard is a logger for tests and callers that want silence.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Banner writes the untagged lines the real gateway prints at start
// ("version: 2.11.1.0", "commit: <sha>"): the stand-in's version, and in place
// of a commit a line saying what it is. They are written in both formats, as
// the real banner is printed apart from the log formatter (the record shows it
// only in text logs).
func Banner(w io.Writer, version string) error {
	_, err := fmt.Fprintf(w, "version: %s\n%s (test infrastructure)\n", version, Marker)
	return err
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info", "information":
		return slog.LevelInfo, nil
	case "all", "debug", "trace", "verbose":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "critical":
		// The stand-in logs nothing at fatal; fatal keeps its errors visible.
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("telemetry.logs.std.level=%q is not all, debug, info, warn, error or fatal; using info", s)
}

// output serialises writes: one entry, one Write, whole.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

// Handler is the slog.Handler that writes the gateway's formats.
type Handler struct {
	out    *output
	level  slog.Level
	json   bool
	color  bool
	now    func() time.Time
	source string      // the default component
	attrs  []slog.Attr // from WithAttrs, group-qualified
	group  string      // prefix for later attributes ("g." for WithGroup("g"))
}

// Enabled reports whether the level passes telemetry.logs.std.level.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

// WithAttrs returns a handler that adds attrs to every entry.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), qualify(h.group, attrs)...)
	return &c
}

// WithGroup qualifies later attributes' keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

func qualify(group string, attrs []slog.Attr) []slog.Attr {
	if group == "" {
		return attrs
	}
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = slog.Attr{Key: group + a.Key, Value: a.Value}
	}
	return out
}

// entry is one record taken apart.
type entry struct {
	level                             slog.Level
	at                                time.Time
	event, message, exception, source string
	fields                            []slog.Attr // the rest, in order, groups flattened
}

// Handle writes one entry.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	e := entry{level: r.Level, at: h.now(), message: r.Message, event: UnnamedEvent, source: h.source}
	take := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		switch a.Key {
		case KeyEvent:
			e.event = a.Value.String()
		case KeySource:
			e.source = a.Value.String()
		case KeyException:
			e.exception = a.Value.String()
		default:
			e.fields = flatten(e.fields, "", a)
		}
	}
	for _, a := range h.attrs {
		take(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		if h.group != "" {
			a.Key = h.group + a.Key
		}
		take(a)
		return true
	})
	e.source += SourceMark
	var b []byte
	if h.json {
		b = appendJSON(nil, e)
	} else {
		b = appendText(nil, e, h.color)
	}
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(b)
	return err
}

func flatten(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			dst = flatten(dst, p, g)
		}
		return dst
	}
	a.Value = a.Value.Resolve()
	return append(dst, slog.Attr{Key: prefix + a.Key, Value: a.Value})
}

// Text format. The record's tags are [Info], [Warn] and [Error]; a community
// parser also lists [Debug] and [Fatal]. The record has no text line for the
// events the JSON format calls "Verbose", so the stand-in tags them [Debug]
// (the parser's tag) in the Info colour: both are its choice.
var (
	textTags  = map[slog.Level]string{slog.LevelDebug: "[Debug]", slog.LevelInfo: "[Info]", slog.LevelWarn: "[Warn]", slog.LevelError: "[Error]"}
	colours   = map[slog.Level]string{slog.LevelDebug: "\x1b[37m", slog.LevelInfo: "\x1b[37m", slog.LevelWarn: "\x1b[33m", slog.LevelError: "\x1b[31m"}
	jsonLevel = map[slog.Level]string{slog.LevelDebug: "Verbose", slog.LevelInfo: "Info", slog.LevelWarn: "Warning", slog.LevelError: "Error"}
)

// Reset closes a coloured entry.
const Reset = "\x1b[0m"

// band maps any slog level onto the four the formats know.
func band(l slog.Level) slog.Level {
	switch {
	case l < slog.LevelInfo:
		return slog.LevelDebug
	case l < slog.LevelWarn:
		return slog.LevelInfo
	case l < slog.LevelError:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// TextTimeLayout is the text format's timestamp as the record shows it: the
// day without a leading zero and a 12-hour clock without AM/PM (03:25 in a
// line whose request says 15:25), milliseconds, no zone. The stand-in writes
// UTC, as a container's clock is.
const TextTimeLayout = "2006-01-2T03:04:05.000"

// JSONTimeLayout is the JSON format's timestamp: UTC, 7 fractional digits, Z.
// Gateways before 2.9.0 put a stray quote after it; the stand-in emulates a
// later one, so its lines are well-formed JSON.
const JSONTimeLayout = "2006-01-02T15:04:05.0000000Z"

// appendText writes "[Info] <ts> [<Event>]", then ", message: …",
// ", exception: …", ", source: …" as the record orders them, then the other
// fields as ", key: value" (as the record's correlationId and GatewayLogs
// fields are). A multi-line exception's first line stays in the entry; the
// rest follow on their own lines, inside the colour. (Where the real gateway
// puts source after a multi-line exception the record does not show.)
func appendText(b []byte, e entry, color bool) []byte {
	lv := band(e.level)
	if color {
		b = append(b, colours[lv]...)
	}
	b = append(b, textTags[lv]...)
	b = append(b, ' ')
	b = e.at.UTC().AppendFormat(b, TextTimeLayout)
	b = append(b, " ["...)
	b = append(b, e.event...)
	b = append(b, ']')
	first, rest, _ := strings.Cut(e.exception, "\n")
	for _, kv := range [][2]string{{"message", oneLine(e.message)}, {"exception", first}, {"source", oneLine(e.source)}} {
		if kv[1] != "" {
			b = append(b, ", "+kv[0]+": "+kv[1]...)
		}
	}
	for _, a := range e.fields {
		b = append(b, ", "+a.Key+": "+oneLine(textValue(a.Value))...)
	}
	if rest != "" {
		b = append(b, '\n')
		b = append(b, strings.TrimRight(rest, "\n")...)
	}
	if color {
		b = append(b, Reset...)
	}
	return append(b, '\n')
}

// oneLine keeps a field on the entry's line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// textValue writes booleans as .NET does (True, False).
func textValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindBool:
		if v.Bool() {
			return "True"
		}
		return "False"
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// appendJSON writes level, timestamp, eventType, message, exception, source
// in that order (message and exception only when there is one), then the other
// fields.
func appendJSON(b []byte, e entry) []byte {
	b = append(b, `{"level":`...)
	b = strconv.AppendQuote(b, jsonLevel[band(e.level)])
	b = append(b, `,"timestamp":"`...)
	b = e.at.UTC().AppendFormat(b, JSONTimeLayout)
	b = append(b, `","eventType":`...)
	b = appendJSONString(b, e.event)
	if e.message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, e.message)
	}
	if e.exception != "" {
		b = append(b, `,"exception":`...)
		b = appendJSONString(b, e.exception)
	}
	b = append(b, `,"source":`...)
	b = appendJSONString(b, e.source)
	for _, a := range e.fields {
		b = append(b, ',')
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		b = appendJSONValue(b, a.Value)
	}
	return append(b, "}\n"...)
}

// appendJSONString quotes s as .NET's System.Text.Json would not: without
// escaping <, > and &, so a stack's " ---> " reads as it does in the record.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // A string always encodes.
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

func appendJSONValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'f', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindTime:
		return appendJSONString(b, v.Time().UTC().Format(JSONTimeLayout))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return appendJSONString(b, err.Error())
		}
	}
	return appendJSONString(b, v.String())
}
