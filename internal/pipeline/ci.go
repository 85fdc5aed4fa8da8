package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
)

// CheckDeployed runs the production checks (what promote proves after its
// rollout) on the profile the cluster records, as a step of its own, with
// the credential the cluster's Secret holds. The error says how many
// checks failed; the results say which.
func (s *Session) CheckDeployed(ctx context.Context) ([]CheckResult, error) {
	if err := s.Connect(); err != nil {
		return nil, err
	}
	p := s.Names
	if s.Recorded != nil {
		p = s.Recorded.Spec
	}
	var out []CheckResult
	err := s.runSteps(ctx, []step{{name: StepChecks, detail: "the " + p.Name + " profile's features on the cluster", run: func(ctx context.Context, st *events.Step) (string, error) {
		read, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Read)
		tok, _ := s.ClusterToken(read) // workload identity has none
		cancel()
		rs, _, err := s.check(ctx, st, p, tok)
		out = rs
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d check(s) passed", len(rs)), nil
	}}})
	return out, err
}

// logLimit bounds one container's log in WritePodLogs.
const logLimit = 8 << 20

// WritePodLogs writes the log of every container of every pod in the
// gateway's namespace and the demo's to dir/NAMESPACE/POD/CONTAINER.log
// (and CONTAINER.previous.log after a restart), each through scrub, and
// returns the files written. A log that cannot be read is a file saying
// why; the error joins what could not be listed or written.
func (s *Session) WritePodLogs(ctx context.Context, dir string, scrub func([]byte) []byte) ([]string, error) {
	if err := s.Connect(); err != nil {
		return nil, err
	}
	var files []string
	var errs []error
	for _, ns := range []string{s.Names.Namespace, demo.Namespace} {
		pods, err := s.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("pods of %s: %w", ns, err))
			continue
		}
		sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
		for _, p := range pods.Items {
			for _, c := range p.Spec.Containers {
				restarted := false
				for _, cs := range p.Status.ContainerStatuses {
					if cs.Name == c.Name && cs.RestartCount > 0 {
						restarted = true
					}
				}
				for _, previous := range []bool{false, true} {
					if previous && !restarted {
						continue
					}
					name := c.Name + ".log"
					if previous {
						name = c.Name + ".previous.log"
					}
					path := filepath.Join(dir, ns, p.Name, name)
					if err := writeLog(path, s.containerLog(ctx, ns, p.Name, c.Name, previous), scrub); err != nil {
						errs = append(errs, err)
						continue
					}
					files = append(files, path)
				}
			}
		}
	}
	return files, errors.Join(errs...)
}

// containerLog is one container's log, or why it cannot be read.
func (s *Session) containerLog(ctx context.Context, ns, pod, container string, previous bool) []byte {
	limit := int64(logLimit)
	rc, err := s.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous, Timestamps: true, LimitBytes: &limit}).Stream(ctx)
	if err != nil {
		return []byte("log not available: " + err.Error() + "\n")
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		b = append(b, "\n(reading the log stopped: "+err.Error()+")\n"...)
	}
	return b
}

func writeLog(path string, b []byte, scrub func([]byte) []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, scrub(b), 0o644)
}
