package podlogs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Levels in order; a line's level is normalise'd to one of them.
var levels = []string{"debug", "info", "warn", "error"}

// Entry is what a log entry says: its level, the gateway's event name, the
// component, the message and the exception when it says them (the
// gateway's text or JSON format, slog's JSON or key=value text), and its
// other fields.
type Entry struct {
	Level   string // debug, info, warn, error; "" when the line does not say
	Event   string // the gateway's event name: [EventName] in text, eventType in JSON
	Source  string // the gateway's component (source: / "source")
	Message string
	// Exception is the exception the entry carries, with the lines that
	// followed it in the log (stack frames) when the entry was grouped.
	Exception string
	Fields    [][2]string // sorted by key (text: in the line's order)
	JSON      map[string]any
}

var (
	textLevelRE = regexp.MustCompile(`(?i)\blevel=("?)([a-z]+)`)
	textMsgRE   = regexp.MustCompile(`\bmsg="((?:[^"\\]|\\.)*)"`)

	// The gateway's text format: [Level] timestamp [EventName], key: value...
	// The level and timestamp are missing from some excerpts, and some
	// gateways write no space after the level. The timestamp is not read:
	// it has no zone and a 12-hour clock.
	gwLevelRE = regexp.MustCompile(`^\[(?i:(verbose|trace|debug|info|information|warn|warning|error|fatal|critical))\]\s*`)
	gwStampRE = regexp.MustCompile(`^\d{4}\s*-\s*\d{1,2}\s*-\s*\d{1,2}T[\d:. ]*Z?\s*`)
	gwEventRE = regexp.MustCompile(`^\[([A-Za-z][\w.]*)\]`)
	gwCorrRE  = regexp.MustCompile(`(?:^|, )correlationId: (.*)$`)
	gwSrcRE   = regexp.MustCompile(`(?:^|, )source: ([\w.\-]+)\s*$`)

	// ANSI colour: ESC[…m, as Windows consoles print it (←[…m), or its
	// remnant without the ESC at either end of a line.
	ansiRE     = regexp.MustCompile(`(?:\x1b|←)\[[0-9;]*m`)
	bareANSIRE = regexp.MustCompile(`^\[[0-9;]*m|\[[0-9;]*m$`)
	// Gateways before 2.9.0 wrote a second quote after the JSON timestamp.
	doubledQuoteRE = regexp.MustCompile(`("timestamp"\s*:\s*"[^"]*")"`)
)

// StripANSI removes colour escapes, including the remnants copied logs
// keep of them (←[31m, a bare [33m at the start of a line).
func StripANSI(s string) string {
	if strings.ContainsAny(s, "\x1b←[") {
		s = ansiRE.ReplaceAllString(s, "")
		s = bareANSIRE.ReplaceAllString(s, "")
	}
	return s
}

// Read makes sense of a line: the gateway's JSON (telemetry.logs.std=json,
// including the invalid JSON of gateways before 2.9.0) or text format,
// slog's JSON, or text with level=… and msg="…" (logfmt), or none of them.
func Read(text string) Entry {
	t := strings.TrimSpace(StripANSI(text))
	if strings.HasPrefix(t, "{") {
		if e, ok := readJSON(t); ok {
			return e
		}
	}
	if e, ok := readGatewayText(t); ok {
		return e
	}
	e := Entry{Message: t}
	if m := textLevelRE.FindStringSubmatch(t); m != nil {
		e.Level = normalise(m[2])
	}
	if m := textMsgRE.FindStringSubmatch(t); m != nil {
		e.Message = strings.ReplaceAll(m[1], `\"`, `"`)
	}
	return e
}

func readJSON(t string) (Entry, bool) {
	var m map[string]any
	if json.Unmarshal([]byte(t), &m) != nil {
		fixed := doubledQuoteRE.ReplaceAllString(t, "$1")
		if json.Unmarshal([]byte(fixed), &m) != nil {
			return lenientJSON(t)
		}
	}
	e := Entry{JSON: m}
	for k, v := range m {
		s, isString := v.(string)
		if !isString {
			s = fmt.Sprint(v)
		}
		switch strings.ToLower(k) {
		case "level", "severity", "lvl", "@l", "loglevel":
			e.Level = normalise(s)
			continue
		case "msg", "message", "@m":
			e.Message = s
			continue
		case "eventtype":
			e.Event = s
			continue
		case "exception":
			e.Exception = s
			continue
		case "source":
			if isString {
				e.Source = s
				continue
			}
		case "time", "timestamp", "@t", "ts":
			continue
		}
		if b, err := json.Marshal(v); err == nil && (strings.HasPrefix(string(b), "{") || strings.HasPrefix(string(b), "[")) {
			s = string(b)
		}
		e.Fields = append(e.Fields, [2]string{k, s})
	}
	sort.Slice(e.Fields, func(i, j int) bool { return e.Fields[i][0] < e.Fields[j][0] })
	return e, true
}

var lenientKeys = map[string]*regexp.Regexp{}

func init() {
	for _, k := range []string{"level", "eventType", "source", "message", "msg", "exception"} {
		lenientKeys[k] = regexp.MustCompile(`"` + k + `"\s*:\s*"`)
	}
}

// lenientJSON reads the gateway's fields from a JSON line that is not JSON
// (cut short, say): each string value up to its closing quote or the end.
func lenientJSON(t string) (Entry, bool) {
	get := func(key string) string {
		loc := lenientKeys[key].FindStringIndex(t)
		if loc == nil {
			return ""
		}
		rest := t[loc[1]:]
		end := len(rest)
		for i := 0; i < len(rest); i++ {
			if rest[i] == '\\' {
				i++
				continue
			}
			if rest[i] == '"' {
				end = i
				break
			}
		}
		raw := rest[:end]
		var s string
		if json.Unmarshal([]byte(`"`+strings.TrimSuffix(raw, `\`)+`"`), &s) == nil {
			return s
		}
		return raw
	}
	e := Entry{Level: normalise(get("level")), Event: get("eventType"), Source: get("source"), Message: get("message"), Exception: get("exception")}
	if e.Message == "" {
		e.Message = get("msg")
	}
	if e.Level == "" && e.Event == "" && e.Message == "" {
		return Entry{}, false
	}
	return e, true
}

// readGatewayText reads the gateway's text format:
// [Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider
func readGatewayText(t string) (Entry, bool) {
	var e Entry
	rest := t
	if m := gwLevelRE.FindStringSubmatch(rest); m != nil {
		e.Level = normalise(m[1])
		rest = rest[len(m[0]):]
		rest = rest[len(gwStampRE.FindString(rest)):]
	}
	if m := gwEventRE.FindStringSubmatch(rest); m != nil {
		e.Event = m[1]
		rest = rest[len(m[0]):]
	} else if e.Level == "" {
		return Entry{}, false
	}
	rest = strings.TrimPrefix(strings.TrimSpace(rest), ",")
	rest = strings.TrimSpace(rest)
	if m := gwCorrRE.FindStringSubmatchIndex(rest); m != nil {
		e.Fields = append(e.Fields, [2]string{"correlationId", rest[m[2]:m[3]]})
		rest = rest[:m[0]]
	}
	if m := gwSrcRE.FindStringSubmatchIndex(rest); m != nil {
		e.Source = rest[m[2]:m[3]]
		rest = rest[:m[0]]
	}
	switch {
	case strings.HasPrefix(rest, "message: "):
		e.Message = strings.TrimPrefix(rest, "message: ")
		if msg, exc, ok := strings.Cut(e.Message, ", exception: "); ok {
			e.Message, e.Exception = msg, exc
		}
	case strings.HasPrefix(rest, "exception: "):
		e.Exception = strings.TrimPrefix(rest, "exception: ")
	default:
		e.Message = rest
	}
	return e, true
}

// stackRE matches the lines that continue an entry: stack frames, inner
// exceptions, and the indented or closing lines of a multi-line value.
var stackRE = regexp.MustCompile(`^(?:\s+\S|at |---> |--- End of |[}\]],?\s*$|[\w.+]+Exception(?:\s*\(|:))`)

// continues says a line (its colour escapes removed) belongs to the entry
// before it rather than starting one.
func continues(stripped string) bool {
	if !stackRE.MatchString(stripped) {
		return false
	}
	t := strings.TrimSpace(stripped)
	if strings.HasPrefix(t, "{") || gwLevelRE.MatchString(t) || gwEventRE.MatchString(t) {
		return false
	}
	return true
}

// add puts the lines that followed an entry into it: stack frames to its
// exception (or its message, when it has no exception and they are not
// frames).
func (e *Entry) add(more []string) {
	for _, l := range more {
		l = strings.TrimRight(l, " \t\r")
		t := strings.TrimSpace(l)
		frame := strings.HasPrefix(t, "at ") || strings.HasPrefix(t, "---> ") || strings.HasPrefix(t, "--- End of")
		switch {
		case e.Exception != "" || frame:
			if e.Exception != "" {
				e.Exception += "\n"
			}
			e.Exception += l
		default:
			if e.Message != "" {
				e.Message += "\n"
			}
			e.Message += l
		}
	}
}

func normalise(l string) string {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "trace", "verbose", "debug", "dbug":
		return "debug"
	case "info", "information", "informational", "notice":
		return "info"
	case "warn", "warning":
		return "warn"
	case "error", "err", "fatal", "critical", "crit", "panic":
		return "error"
	}
	return ""
}

// AtLeast says the entry is at min or above; a line that names no level is
// always shown (a panic's stack says none).
func (e Entry) AtLeast(min string) bool {
	if min == "" || e.Level == "" {
		return true
	}
	rank := func(l string) int {
		for i, x := range levels {
			if x == l {
				return i
			}
		}
		return 0
	}
	return rank(e.Level) >= rank(min)
}

// Level checks a --level value: verbose, debug, info, warn, warning or
// error (the gateway's Verbose is debug here).
func Level(l string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "":
		return "", nil
	case "verbose", "debug", "info", "warn", "warning", "error":
		return normalise(l), nil
	}
	return "", fmt.Errorf("--level %q: use verbose, debug, info, warn (or warning) or error", l)
}

// Text is the entry for a person: time, pod, level, [event], message, the
// source and other fields as key=value; then, indented, the message's
// further lines and the exception's.
func (e Entry) Text(l Line, pod string) string {
	var b strings.Builder
	b.WriteString(l.Time.Local().Format("15:04:05.000"))
	b.WriteString(" ")
	b.WriteString(pod)
	b.WriteString(" ")
	if e.Level != "" {
		fmt.Fprintf(&b, "%-5s ", strings.ToUpper(e.Level))
	}
	if e.Event != "" {
		fmt.Fprintf(&b, "[%s]", e.Event)
		if e.Message != "" {
			b.WriteString(" ")
		}
	}
	msg, under, _ := strings.Cut(e.Message, "\n")
	b.WriteString(msg)
	fields := e.Fields
	if e.Source != "" {
		fields = append([][2]string{{"source", e.Source}}, fields...)
	}
	for _, f := range fields {
		v := f[1]
		if strings.ContainsAny(v, " \t\"=\n") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", f[0], v)
	}
	for _, more := range []string{under, e.Exception} {
		if more == "" {
			continue
		}
		for _, x := range strings.Split(more, "\n") {
			b.WriteString("\n    ")
			b.WriteString(strings.TrimRight(x, " \t\r"))
		}
	}
	return b.String()
}

// JSONLine is the line for a script: the pod, the kubelet's time, and the
// line itself (its JSON object when it is one).
func (e Entry) JSONLine(l Line) ([]byte, error) {
	var log any = l.Text
	if e.JSON != nil {
		log = e.JSON
	}
	return json.Marshal(struct {
		Time time.Time `json:"time"`
		Pod  string    `json:"pod"`
		Log  any       `json:"log"`
	}{l.Time, l.Pod, log})
}

// Short is a pod's name without its Deployment's: the ReplicaSet hash and
// the pod's own suffix, which is what tells pods apart in a rollout.
func Short(pod, deployment string) string {
	if s, ok := strings.CutPrefix(pod, deployment+"-"); ok && s != "" {
		return s
	}
	return pod
}

// Colours cycle over pods on a terminal.
var colours = []string{"\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[91m"}

// Painter gives each pod a colour of its own, in order of appearance.
type Painter struct {
	seen map[string]int
}

// Paint wraps s in pod's colour.
func (p *Painter) Paint(pod, s string) string {
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	i, ok := p.seen[pod]
	if !ok {
		i = len(p.seen)
		p.seen[pod] = i
	}
	return colours[i%len(colours)] + s + "\x1b[0m"
}
