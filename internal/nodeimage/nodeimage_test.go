package nodeimage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestCheckSaysWhatThisMachineLacks(t *testing.T) {
	t.Parallel()
	var re *RequirementError
	if err := (&Builder{GOOS: "darwin", UID: 501}).Check(); !errors.As(err, &re) || !strings.Contains(re.Fix, "apimdev up --kit") {
		t.Errorf("macOS: %v", err)
	}
	if err := (&Builder{GOOS: "linux", UID: 1000}).Check(); !errors.As(err, &re) || !strings.Contains(re.Fix, "sudo apimdev node-image build") {
		t.Errorf("not root: %v", err)
	}
}

// The build's stage lines become stages with their times and estimates;
// every line is logged and the last ones kept for an error.
func TestFollowReadsTheStages(t *testing.T) {
	t.Parallel()
	var stages []Stage
	var logged []string
	b := &Builder{Progress: func(s Stage) { stages = append(stages, s) }, Log: func(l string) { logged = append(logged, l) }}
	out := strings.Join([]string{
		"[node-image 08:45:48] stage kubernetes: start",
		"[node-image 08:45:48] kubernetes v1.34.4: resolving modules (large download on a cold cache)",
		"[node-image 08:50:48] stage kubernetes: done in 300s",
		"[node-image 08:50:57] stage something-new: start",
	}, "\n") + "\n"
	tail := &lastLines{n: 2}
	b.follow(strings.NewReader(out), time.Now(), tail)
	if len(stages) != 3 || stages[0].Name != "kubernetes" || stages[0].Done || stages[0].Estimate != 300*time.Second {
		t.Fatalf("stages %+v", stages)
	}
	if !stages[1].Done || stages[1].Took != 300*time.Second || stages[2].Estimate != 0 {
		t.Fatalf("stages %+v", stages)
	}
	if len(logged) != 4 || len(tail.lines()) != 2 || !strings.Contains(tail.lines()[1], "something-new") {
		t.Fatalf("logged %d, tail %v", len(logged), tail.lines())
	}
}

type images []string

func (i images) Labelled(_ context.Context, label string) ([]string, error) {
	if label != Label {
		return nil, errors.New("wrong label")
	}
	return i, nil
}

func TestFindTakesTheNewestBuiltImage(t *testing.T) {
	t.Parallel()
	if ref, ok, err := Find(context.Background(), images{"apimdev/kind-node:v1.34.4", "apimdev-e2e/kind-node:v1.34.4"}); !ok || err != nil || ref != "apimdev/kind-node:v1.34.4" {
		t.Fatalf("%s %v %v", ref, ok, err)
	}
	if _, ok, _ := Find(context.Background(), images{}); ok {
		t.Fatal("found an image in none")
	}
}

// Root's build never runs, nor builds into, what another user could have
// put in its cache: a cache under a directory of another owner is refused
// before anything runs, and a script planted where the build once kept its
// scripts is not run.
func TestRootRefusesACacheAnotherUserCanChange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user (CI runs as root)")
	}
	home := filepath.Join(testdir.New(t), "home-of-nobody")
	cache := filepath.Join(home, ".cache", "apimdev", "node-image")
	planted := filepath.Join(cache, "scripts", "0123456789abcdef", "e2e")
	if err := os.MkdirAll(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(home, "ran-as-root")
	script := "#!/bin/sh\ntouch " + marker + "\n"
	if err := os.WriteFile(filepath.Join(planted, "node-image.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(planted, "..", ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	}); err != nil {
		t.Fatal(err)
	}
	_, err := (&Builder{Cache: cache, GOOS: "linux", UID: 0}).Build(context.Background())
	var re *RequirementError
	if !errors.As(err, &re) || !strings.Contains(re.Problem, "owned by uid 65534") || !strings.Contains(re.Fix, "--cache") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the planted script ran")
	}
}
