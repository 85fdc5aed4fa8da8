//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// leakForms are the ways a secret could be written without appearing
// literally: JSON-escaped, URL-escaped, and inside base64 at any of the three
// alignments (a Secret's data, a dumped object). The test finds each of them
// on its own, independently of the product's redaction code.
func leakForms(secret string) []string {
	forms := []string{secret, strings.ReplaceAll(secret, "/", `\/`), url.QueryEscape(secret), strings.TrimRight(secret, "=")}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 0; k < 3; k++ {
			s := enc.EncodeToString(append(make([]byte, k), secret...))
			start := 0
			if k > 0 {
				start = 4
			}
			if len(s)-4 > start+12 {
				forms = append(forms, s[start:len(s)-4])
			}
		}
	}
	return forms
}

// scanner greps everything the tool wrote for the canaries and counts what
// it read.
type scanner struct {
	mu       sync.Mutex
	forms    map[string]string // form -> which canary
	files    int
	bytes    int64
	lines    int
	hits     []string
	seen     map[string]int64 // path -> size already scanned
	psSample int
	psBytes  int64
	// privateKeys also reports every PEM private key block it reads.
	privateKeys bool
}

// pemPrivateKey is the first line of a PEM private key block (PKCS#8, RSA,
// EC, OpenSSH, encrypted or not).
var pemPrivateKey = regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----`)

func newScanner(canaries ...string) *scanner {
	s := &scanner{forms: map[string]string{}, seen: map[string]int64{}}
	for i, c := range canaries {
		for _, f := range leakForms(c) {
			s.forms[f] = fmt.Sprintf("canary %d", i+1)
		}
	}
	return s
}

// bytes scans one blob; where says what it is for the report.
func (s *scanner) scan(where string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files++
	s.bytes += int64(len(b))
	s.lines += bytes.Count(b, []byte("\n"))
	for f, which := range s.forms {
		if bytes.Contains(b, []byte(f)) {
			s.hits = append(s.hits, fmt.Sprintf("%s holds %s (form %.12q…)", where, which, f))
		}
	}
	if s.privateKeys {
		if m := pemPrivateKey.Find(b); m != nil {
			s.hits = append(s.hits, fmt.Sprintf("%s holds a private key (%s)", where, m))
		}
	}
}

// tree scans every regular file under root; a .tar.gz is opened and each of
// its files scanned (a compressed token would not show in the raw bytes).
func (s *scanner) tree(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		s.mu.Lock()
		size, done := s.seen[p]
		s.mu.Unlock()
		if done && size == info.Size() {
			return nil
		}
		s.file(p)
		s.mu.Lock()
		s.seen[p] = info.Size()
		s.mu.Unlock()
		return nil
	})
}

func (s *scanner) file(p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	s.scan(p, b)
	if strings.HasSuffix(p, ".tar.gz") {
		s.tarGz(p, b)
	}
}

func (s *scanner) tarGz(name string, b []byte) {
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		s.mu.Lock()
		s.hits = append(s.hits, fmt.Sprintf("%s: not a gzip file: %v", name, err))
		s.mu.Unlock()
		return
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return
		}
		body, _ := io.ReadAll(tr)
		s.scan(name+":"+h.Name, body)
	}
}

// psSampler reads the whole process list (ps -eo args) every interval while
// the suite runs: a token in a command line would be visible to every user.
type psSampler struct {
	stop, done chan struct{}
}

func (s *scanner) sampleProcesses(every time.Duration) *psSampler {
	p := &psSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// Bounded: the suite's own timeout is 40 minutes.
		deadline := time.After(45 * time.Minute)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if b, err := exec.Command("ps", "-eo", "args").Output(); err == nil {
				s.mu.Lock()
				s.psSample++
				s.psBytes += int64(len(b))
				s.mu.Unlock()
				for f, which := range s.forms {
					if bytes.Contains(b, []byte(f)) {
						s.mu.Lock()
						s.hits = append(s.hits, fmt.Sprintf("the process list holds %s", which))
						s.mu.Unlock()
					}
				}
			}
			select {
			case <-p.stop:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *psSampler) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
