package podlogs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Levels in order; a line's level is normalised to one of them.
var levels = []string{"debug", "info", "warn", "error"}

// Entry is a line read: its level and message when it says them (a JSON
// line, or key=value text), and its other fields.
type Entry struct {
	Level   string // debug, info, warn, error; "" when the line does not say
	Message string
	Fields  [][2]string // sorted by key
	JSON    map[string]any
}

var (
	textLevelRE = regexp.MustCompile(`(?i)\blevel=("?)([a-z]+)`)
	textMsgRE   = regexp.MustCompile(`\bmsg="((?:[^"\\]|\\.)*)"`)
)

// Read makes sense of a line: JSON (the gateway's telemetry.logs.std=json),
// or text with level=… and msg="…" (logfmt), or neither.
func Read(text string) Entry {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(t), &m) == nil {
			e := Entry{JSON: m}
			for k, v := range m {
				s := fmt.Sprint(v)
				switch strings.ToLower(k) {
				case "level", "severity", "lvl", "@l", "loglevel":
					e.Level = normalise(s)
					continue
				case "msg", "message", "@m":
					e.Message = s
					continue
				case "time", "timestamp", "@t", "ts":
					continue
				}
				if b, err := json.Marshal(v); err == nil && (strings.HasPrefix(string(b), "{") || strings.HasPrefix(string(b), "[")) {
					s = string(b)
				}
				e.Fields = append(e.Fields, [2]string{k, s})
			}
			sort.Slice(e.Fields, func(i, j int) bool { return e.Fields[i][0] < e.Fields[j][0] })
			return e
		}
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

// Level checks a --level value.
func Level(l string) (string, error) {
	if l == "" {
		return "", nil
	}
	if n := normalise(l); n != "" {
		return n, nil
	}
	return "", fmt.Errorf("--level %q: use debug, info, warn or error", l)
}

// Text is the line for a person: time, pod, level, message, then the other
// fields as key=value.
func (e Entry) Text(l Line, pod string) string {
	var b strings.Builder
	b.WriteString(l.Time.Local().Format("15:04:05.000"))
	b.WriteString(" ")
	b.WriteString(pod)
	b.WriteString(" ")
	if e.Level != "" {
		fmt.Fprintf(&b, "%-5s ", strings.ToUpper(e.Level))
	}
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		v := f[1]
		if strings.ContainsAny(v, " \t\"=") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", f[0], v)
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
