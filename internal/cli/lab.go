package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/junit"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
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
	s, _, err := a.session(cmd, opening{existing: true})
	if err != nil {
		return err
	}
	cfg := s.Config
	started := time.Now()
	env := s.LabEnv(ctx, l.N, answer)
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
func writeSmokeJUnit(path string, s *pipeline.Session, rs []smoke.Result, started time.Time, user string) error {
	cfg := s.Config
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
	if s.IsDemo() {
		props = append(props, junit.Property{Name: "standin", Value: demo.Label})
	}
	return junit.WriteFile(path, junit.NewSuite("apimdev smoke", started, cases, props...))
}
