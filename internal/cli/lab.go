package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/junit"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	labtext "github.com/apimdev/apimdev/labs"
)

func (a *app) labCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Workshop labs that check themselves: list, show, check N (JUnit XML for the instructor)",
		Long: `The labs (labs/ in the repository, built into apimdev) take an attendee from
'apimdev up --demo' to tearing everything down. Each ends with
'apimdev lab check N', which verifies the lab's outcome on the cluster and says
what to do when it is not there yet. --junit FILE writes the result as JUnit XML
so an instructor can collect everyone's.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the labs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, l := range labs.All() {
				fmt.Fprintf(a.streams.Out, "%d  %-36s %s\n", l.N, l.Title, l.Does)
			}
			fmt.Fprintln(a.streams.Out, "\n`apimdev lab show N` prints a lab; `apimdev lab check N` checks it.")
			return nil
		},
	}, &cobra.Command{
		Use:   "show N",
		Short: "Print lab N",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := labArg(args[0])
			if err != nil {
				return err
			}
			b, err := labtext.Files.ReadFile(l.File)
			if err != nil {
				return err
			}
			_, err = a.streams.Out.Write(b)
			return err
		},
	})
	var answer, junitFile string
	check := &cobra.Command{
		Use:   "check N",
		Short: "Check lab N's outcome on the cluster: pass or fail, with a hint",
		Example: `  apimdev lab check 1
  apimdev lab check 3 --answer demo-gw-5d8f7c9b6-x2k4p
  apimdev lab check 2 --junit results/lab2.xml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := labArg(args[0])
			if err != nil {
				return err
			}
			return a.labCheck(cmd, l, answer, junitFile)
		},
	}
	check.Flags().StringVar(&answer, "answer", "", "what the lab asked you to find (lab 3: the pod's name)")
	check.Flags().StringVar(&junitFile, "junit", "", "also write the result as JUnit XML to this file")
	cmd.AddCommand(check)
	return cmd
}

func labArg(s string) (labs.Lab, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(s), "lab"))
	if err != nil {
		return labs.Lab{}, &usageError{fmt.Sprintf("%q is not a lab number (1 to %d)", s, len(labs.All()))}
	}
	l, err := labs.Get(n)
	if err != nil {
		return l, &usageError{err.Error()}
	}
	return l, nil
}

func (a *app) labCheck(cmd *cobra.Command, l labs.Lab, answer, junitFile string) error {
	ctx := cmd.Context()
	cfg, s, err := a.existingSession(cmd)
	if err != nil {
		return err
	}
	started := time.Now()
	connect := func() (kubernetes.Interface, error) {
		if err := s.Connect(); err != nil {
			return nil, err
		}
		return s.Client, nil
	}
	env := labs.Env{
		Inspect:      s.Cluster.Inspect,
		Client:       connect,
		Profile:      s.Profile,
		ProdReplicas: int32(cfg.Prod.Replicas),
		Forward: func() (bool, int) {
			rec, ok := s.Files.Forward()
			if !ok {
				return false, cfg.Forward.HTTPPort
			}
			return true, rec.HTTPPort
		},
		Kubeconfig: s.Cluster.Kubeconfig,
		Smoke:      func(ctx context.Context) ([]smoke.Result, error) { return smokeNow(ctx, s) },
		Logs:       func(ctx context.Context, pod string) (string, error) { return podLog(ctx, s, pod) },
		Answer:     answer,
	}
	if st, _ := s.Cluster.Inspect(ctx); st == cluster.ClusterOurs {
		if c, err := connect(); err == nil {
			if ds, err := demo.Read(ctx, c); err == nil && ds.Found {
				env.Demo = &ds
			}
			env.Baseline = labBaseline(ctx, s, c, env.Demo, l.N)
		}
	}
	res, err := labs.Run(ctx, l.N, env)
	if err != nil {
		return &usageError{err.Error()}
	}
	if junitFile != "" {
		if err := writeLabJUnit(junitFile, res, started, a.getenv("USER")); err != nil {
			return err
		}
	}
	if cfg.Output == "json" {
		a.printJSON(res)
	} else {
		a.printLab(res)
	}
	if !res.Passed {
		return &shownError{err: fmt.Errorf("lab %d: %d check(s) failed", res.Lab, res.Failed()), code: ExitFailure}
	}
	return nil
}

// labRecord is what the labs remember on this machine: the token the
// gateway had when the labs started, for lab 5 (the demo records its own
// in the cluster).
type labRecord struct {
	TokenSHA256 string    `json:"tokenSha256"`
	Recorded    time.Time `json:"recorded"`
}

func labBaseline(ctx context.Context, s *pipeline.Session, c kubernetes.Interface, ds *demo.State, lab int) string {
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
	sec, err := c.CoreV1().Secrets(s.Profile.Namespace).Get(ctx, s.Profile.SecretName(), metav1.GetOptions{})
	if err != nil {
		return ""
	}
	rec = labRecord{TokenSHA256: demo.TokenSHA256(string(sec.Data["value"])), Recorded: time.Now().UTC()}
	if b, err := json.Marshal(rec); err == nil {
		_ = state.WriteFile(p, b)
	}
	return rec.TokenSHA256
}

// smokeNow runs the smoke calls through the background forward, or a
// forward of its own, as `apimdev smoke` does.
func smokeNow(ctx context.Context, s *pipeline.Session) ([]smoke.Result, error) {
	if err := s.Connect(); err != nil {
		return nil, err
	}
	httpPort, httpsPort := 0, 0
	if rec, ok := s.Files.Forward(); ok {
		httpPort, httpsPort = rec.HTTPPort, rec.HTTPSPort
	} else {
		var err error
		if httpPort, httpsPort, err = freePorts(); err != nil {
			return nil, err
		}
		stop, _, err := s.StartForward(ctx, httpPort, httpsPort)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	tok, _ := s.ClusterToken(ctx)
	demoSmoke(ctx, s)
	return s.Smoke(ctx, tok, httpPort, httpsPort)
}

func podLog(ctx context.Context, s *pipeline.Session, pod string) (string, error) {
	if err := s.Connect(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := s.Client.CoreV1().Pods(s.Profile.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: s.Profile.Gateway, LimitBytes: ptr.To[int64](8 << 20)}).DoRaw(ctx)
	if err != nil {
		return "", errors.New(strings.TrimSpace(string(b) + " " + err.Error()))
	}
	return string(b), nil
}

func (a *app) printLab(r labs.Result) {
	w := a.streams.Out
	ok, bad := "✓", "✗"
	if !a.streams.Terminal && a.getenv("APIMDEV_ASCII") == "1" {
		ok, bad = "ok", "FAIL"
	}
	head := fmt.Sprintf("lab %d: %s", r.Lab, r.Title)
	if r.Gateway != "" {
		head += "  (" + r.Gateway + ")"
	}
	fmt.Fprintln(w, head)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		mark := ok
		if !c.OK {
			mark = bad
		}
		fmt.Fprintf(w, "  %s %-*s  %s\n", mark, width, c.Name, c.Detail)
		if c.Hint != "" {
			fmt.Fprintf(w, "    %*s  hint: %s\n", width, "", c.Hint)
		}
	}
	if r.Passed {
		fmt.Fprintf(w, "PASS lab %d: %d check(s) passed\n", r.Lab, len(r.Checks))
	} else {
		fmt.Fprintf(w, "FAIL lab %d: %d of %d check(s) failed\n", r.Lab, r.Failed(), len(r.Checks))
	}
}

func writeLabJUnit(path string, r labs.Result, started time.Time, user string) error {
	var cases []junit.Case
	for _, c := range r.Checks {
		jc := junit.Case{Name: c.Name, Classname: fmt.Sprintf("apimdev.lab%d", r.Lab), Time: junit.Seconds(c.Elapsed), SystemOut: c.Detail}
		if !c.OK {
			jc.Failure = &junit.Failure{Message: c.Detail, Type: "LabCheckFailed", Text: "hint: " + c.Hint}
		}
		cases = append(cases, jc)
	}
	props := []junit.Property{{Name: "lab", Value: strconv.Itoa(r.Lab)}, {Name: "title", Value: r.Title}, {Name: "user", Value: user}}
	if r.Gateway != "" {
		props = append(props, junit.Property{Name: "gateway", Value: r.Gateway})
	}
	return junit.WriteFile(path, junit.NewSuite(fmt.Sprintf("apimdev lab %d: %s", r.Lab, r.Title), started, cases, props...))
}

// writeSmokeJUnit writes `apimdev smoke --junit`'s report; "" writes nothing.
func writeSmokeJUnit(path string, cfg config.Config, rs []smoke.Result, started time.Time, user string) error {
	if path == "" {
		return nil
	}
	var cases []junit.Case
	for _, r := range rs {
		c := junit.Case{Name: r.Name, Classname: "apimdev.smoke", Time: junit.Seconds(r.Latency), SystemOut: fmt.Sprintf("%s %s -> %d", r.Method, r.URL, r.Status)}
		if !r.Pass {
			c.Failure = &junit.Failure{Message: r.Reason, Type: "SmokeCallFailed", Text: fmt.Sprintf("%s %s answered %d: %s", r.Method, r.URL, r.Status, r.Reason)}
		}
		cases = append(cases, c)
	}
	props := []junit.Property{{Name: "cluster", Value: cfg.Cluster.Name}, {Name: "gateway", Value: cfg.Gateway.Name}, {Name: "user", Value: user}}
	if isDemo(cfg) {
		props = append(props, junit.Property{Name: "standin", Value: demo.Label})
	}
	return junit.WriteFile(path, junit.NewSuite("apimdev smoke", started, cases, props...))
}
