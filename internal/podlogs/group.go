package podlogs

import (
	"encoding/json"
	"strings"
	"time"
)

// Logged is one entry of one pod's log: the line that starts it and the
// lines that continue it (an exception's stack frames), read.
type Logged struct {
	Time  time.Time // the kubelet's time of the entry's first line
	Pod   string
	Lines []string // the container's lines, colour escapes removed
	Entry
}

// Text is the entry for a person (see Entry.Text), under pod's name.
func (g Logged) Text(pod string) string {
	return g.Entry.Text(Line{Time: g.Time, Pod: g.Pod}, pod)
}

// JSON is the entry for a script: the kubelet's time, the pod, the fields
// read, the lines when there are several, and log: the first line itself
// (its JSON object when it is valid JSON).
func (g Logged) JSON() ([]byte, error) {
	var log any = strings.Join(g.Lines[:min(1, len(g.Lines))], "")
	if g.Entry.JSON != nil {
		log = g.Entry.JSON
	}
	var fields map[string]string
	if len(g.Fields) > 0 {
		fields = map[string]string{}
		for _, f := range g.Fields {
			fields[f[0]] = f[1]
		}
	}
	var lines []string
	if len(g.Lines) > 1 {
		lines = g.Lines
	}
	return json.Marshal(struct {
		Time      time.Time         `json:"time"`
		Pod       string            `json:"pod"`
		Level     string            `json:"level,omitempty"`
		Event     string            `json:"event,omitempty"`
		Source    string            `json:"source,omitempty"`
		Message   string            `json:"message,omitempty"`
		Exception string            `json:"exception,omitempty"`
		Fields    map[string]string `json:"fields,omitempty"`
		Lines     []string          `json:"lines,omitempty"`
		Log       any               `json:"log"`
	}{g.Time, g.Pod, g.Level, g.Event, g.Source, g.Message, g.Exception, fields, lines, log})
}

// Grouper gathers each pod's lines into entries: a line that continues an
// entry (a stack frame, an inner exception, an indented line, or any line
// while the entry's colour is not yet reset) joins it, any other line starts
// the pod's next entry. Lines of several pods may interleave; each pod has
// its own open entry. Entries are emitted in the order of their first
// lines, each once it is closed: by its pod's next entry, by Close, or by
// Flush. A Grouper is used from one goroutine.
type Grouper struct {
	Emit func(Logged)
	// Now is the clock Close compares with (default time.Now).
	Now func() time.Time

	open  map[string]*pending
	queue []*pending // in order of first line; the head is emitted once done
}

type pending struct {
	Logged
	done   bool
	colour bool      // the entry's colour is open (its reset has not come)
	last   time.Time // when its last line was added, by Now
}

func (g *Grouper) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Add takes a pod's next line.
func (g *Grouper) Add(l Line) {
	if g.open == nil {
		g.open = map[string]*pending{}
	}
	stripped := strings.TrimRight(StripANSI(l.Text), " \t\r")
	p := g.open[l.Pod]
	if p != nil && !p.done && (continues(stripped) || p.colour && !startsColour(l.Text) && !startsEntry(stripped)) {
		p.Lines = append(p.Lines, stripped)
		p.colour = colourOpen(l.Text, p.colour)
		p.last = g.now()
		return
	}
	if p != nil {
		p.done = true
	}
	n := &pending{Logged: Logged{Time: l.Time, Pod: l.Pod, Lines: []string{stripped}}, colour: colourOpen(l.Text, false), last: g.now()}
	g.open[l.Pod] = n
	g.queue = append(g.queue, n)
	g.emit()
}

// Close closes the entries whose last line came before before (a followed
// pod that has said nothing since), and emits what it can.
func (g *Grouper) Close(before time.Time) {
	for pod, p := range g.open {
		if p.last.Before(before) {
			p.done = true
			delete(g.open, pod)
		}
	}
	g.emit()
}

// Flush closes and emits every entry.
func (g *Grouper) Flush() {
	for _, p := range g.queue {
		p.done = true
	}
	g.open = nil
	g.emit()
}

func (g *Grouper) emit() {
	n := 0
	for n < len(g.queue) && g.queue[n].done {
		p := g.queue[n]
		p.Entry = Read(p.Lines[0])
		p.Entry.add(p.Lines[1:])
		if g.Emit != nil {
			g.Emit(p.Logged)
		}
		g.queue[n] = nil
		n++
	}
	g.queue = g.queue[n:]
}

// startsColour says a raw line begins with a colour escape (a coloured
// entry of its own).
func startsColour(raw string) bool {
	return strings.HasPrefix(raw, "\x1b[") || strings.HasPrefix(raw, "←[")
}

// startsEntry says a line reads as an entry of the gateway's formats.
func startsEntry(stripped string) bool {
	t := strings.TrimSpace(stripped)
	return strings.HasPrefix(t, "{") || gwLevelRE.MatchString(t)
}

// colourOpen says whether a colour is still open after the raw line, given
// whether one was before it: the last escape decides.
func colourOpen(raw string, before bool) bool {
	all := ansiRE.FindAllString(raw, -1)
	if len(all) == 0 {
		return before
	}
	last := all[len(all)-1]
	return !strings.HasSuffix(last, "[0m") && !strings.HasSuffix(last, "[m")
}
