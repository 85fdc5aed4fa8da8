package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
)

// LabEnv is what `apimdev lab check N` checks lab n against: this session's
// cluster, forward, smoke calls and pod logs, the demo's state, and the
// token the labs started with.
func (s *Session) LabEnv(ctx context.Context, n int, answer string) labs.Env {
	connect := func() (kubernetes.Interface, error) {
		if err := s.Connect(); err != nil {
			return nil, err
		}
		return s.Client, nil
	}
	env := labs.Env{
		Inspect:      s.Cluster.Inspect,
		Client:       connect,
		Profile:      s.Names,
		ProdReplicas: int32(s.Config.Prod.Replicas),
		Forward: func() (bool, int) {
			rec, ok := s.Files.Forward()
			if !ok {
				return false, s.Config.Forward.HTTPPort
			}
			return true, rec.HTTPPort
		},
		Kubeconfig: s.Kubeconfig(),
		Smoke:      s.SmokeNow,
		Logs:       s.podLog,
		Answer:     answer,
	}
	if st, _ := s.Cluster.Inspect(ctx); st == cluster.ClusterOurs {
		if c, err := connect(); err == nil {
			if ds, err := demo.Read(ctx, c); err == nil && ds.Found {
				env.Demo = &ds
			}
			env.Baseline = s.labBaseline(ctx, env.Demo, n)
		}
	}
	return env
}

// labRecord is what the labs remember on this machine: the token the
// gateway had when the labs started, for lab 5 (the demo records its own
// in the cluster).
type labRecord struct {
	TokenSHA256 string    `json:"tokenSha256"`
	Recorded    time.Time `json:"recorded"`
}

func (s *Session) labBaseline(ctx context.Context, ds *demo.State, lab int) string {
	if ds != nil && ds.InitialTokenSHA != "" {
		return ds.InitialTokenSHA
	}
	p := filepath.Join(s.Files.Dir, "labs.json")
	var rec labRecord
	if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &rec) == nil && rec.TokenSHA256 != "" {
		return rec.TokenSHA256
	}
	if lab == 5 {
		return "" // recording now would record the rotated token
	}
	sec, err := s.Client.CoreV1().Secrets(s.Names.Namespace).Get(ctx, s.Names.SecretName(), metav1.GetOptions{})
	if err != nil {
		return ""
	}
	rec = labRecord{TokenSHA256: demo.TokenSHA256(string(sec.Data["value"])), Recorded: s.now().UTC()}
	if b, err := json.Marshal(rec); err == nil {
		_ = state.WriteFile(p, b)
	}
	return rec.TokenSHA256
}

func (s *Session) podLog(ctx context.Context, pod string) (string, error) {
	if err := s.Connect(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := s.Client.CoreV1().Pods(s.Names.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: s.Names.Gateway, LimitBytes: ptr.To[int64](8 << 20)}).DoRaw(ctx)
	if err != nil {
		return "", errors.New(strings.TrimSpace(string(b) + " " + err.Error()))
	}
	return string(b), nil
}

var _ func(context.Context) ([]smoke.Result, error) = (*Session)(nil).SmokeNow
