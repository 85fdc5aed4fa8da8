package kit

import (
	"fmt"
	"strings"
)

// meter turns bytes written into progress lines at every tenth of the
// total: a bounded number of lines whatever the size, readable in a log
// and in a terminal alike. Something small gets its final line only.
type meter struct {
	what     string
	total    int64
	done     int64
	lastStep int64
	progress Progress
	finished bool
	quiet    bool
}

// smallBytes is the size below which a meter shows only its last line.
const smallBytes = 64 << 20

func newMeter(what string, total int64, progress Progress) *meter {
	m := &meter{what: what, total: total, progress: progress, quiet: total > 0 && total < smallBytes}
	if !m.quiet {
		m.progress("%s %s", what, bar(0, total))
	}
	return m
}

const unknownStep = 100 << 20 // a line per 100 MB when the total is unknown

func (m *meter) Write(p []byte) (int, error) {
	m.done += int64(len(p))
	var step int64
	if m.total > 0 {
		step = m.done * 10 / m.total
		if step > 9 {
			step = 9 // 100% only once finished
		}
	} else {
		step = m.done / unknownStep
	}
	if step > m.lastStep && !m.quiet {
		m.lastStep = step
		m.progress("%s %s", m.what, bar(m.done, m.total))
	}
	return len(p), nil
}

func (m *meter) finish() {
	if m.finished {
		return
	}
	m.finished = true
	total := m.total
	if total <= 0 || m.done > total {
		total = m.done
	}
	m.progress("%s %s", m.what, bar(total, total))
}

// bar draws "[####------]  40%  412/1030 MB".
func bar(done, total int64) string {
	if total <= 0 {
		return mb(done)
	}
	pct := done * 100 / total
	if pct > 100 {
		pct = 100
	}
	if pct == 100 && done < total {
		pct = 99
	}
	filled := int(pct / 10)
	return fmt.Sprintf("[%s%s] %3d%%  %s/%s", strings.Repeat("#", filled), strings.Repeat("-", 10-filled), pct, mbNumber(done), mb(total))
}

func mbNumber(n int64) string { return fmt.Sprintf("%d", (n+(1<<19))>>20) }

func mb(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%s MB", mbNumber(n))
}
