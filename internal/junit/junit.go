// Package junit writes JUnit XML reports, the format CI systems and
// instructors' scripts already collect: `apimdev smoke --junit` and
// `apimdev lab check --junit` write one file each.
//
// It imports nothing from the rest of apimdev.
package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Suites is the document root, <testsuites>.
type Suites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr,omitempty"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Time     float64  `xml:"time,attr"`
	Suites   []Suite  `xml:"testsuite"`
}

// Suite is one <testsuite>: a smoke run or one lab's checks.
type Suite struct {
	Name       string     `xml:"name,attr"`
	Tests      int        `xml:"tests,attr"`
	Failures   int        `xml:"failures,attr"`
	Time       float64    `xml:"time,attr"`
	Timestamp  string     `xml:"timestamp,attr,omitempty"`
	Hostname   string     `xml:"hostname,attr,omitempty"`
	Properties []Property `xml:"properties>property,omitempty"`
	Cases      []Case     `xml:"testcase"`
	SystemOut  string     `xml:"system-out,omitempty"`
}

// Property is a name/value pair on a suite (who ran it, which gateway).
type Property struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// Case is one <testcase>; Failure is nil when it passed.
type Case struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      float64  `xml:"time,attr"`
	Failure   *Failure `xml:"failure,omitempty"`
	SystemOut string   `xml:"system-out,omitempty"`
}

// Failure says why a case failed; Text holds the hint.
type Failure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// NewSuite makes a suite stamped with the time and host it ran on.
func NewSuite(name string, at time.Time, cases []Case, props ...Property) Suite {
	host, _ := os.Hostname()
	s := Suite{Name: name, Timestamp: at.UTC().Format("2006-01-02T15:04:05"), Hostname: host, Properties: props, Cases: cases}
	s.count()
	return s
}

func (s *Suite) count() {
	s.Tests, s.Failures, s.Time = len(s.Cases), 0, 0
	for _, c := range s.Cases {
		if c.Failure != nil {
			s.Failures++
		}
		s.Time += c.Time
	}
}

// Seconds rounds d for the time attributes.
func Seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// Encode writes the suites as one indented document with the XML header.
func Encode(w io.Writer, suites ...Suite) error {
	doc := Suites{Suites: suites}
	for i := range doc.Suites {
		doc.Suites[i].count()
		doc.Tests += doc.Suites[i].Tests
		doc.Failures += doc.Suites[i].Failures
		doc.Time += doc.Suites[i].Time
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteFile writes the report to path (0644: a report is meant to be
// collected), creating its directory, through a temporary file so a reader
// never sees half a document.
func WriteFile(path string, suites ...Suite) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := Encode(tmp, suites...); err != nil {
		tmp.Close()
		return fmt.Errorf("junit report: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	return nil
}
