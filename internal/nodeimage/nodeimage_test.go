package nodeimage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
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
