package cli

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func (a *app) upgradeCommand() *cobra.Command {
	var o promoteOptions
	var tag string
	cmd := &cobra.Command{
		Use:   "upgrade --image-tag X.Y.Z",
		Short: "Roll the gateway to another version in place: the diff first, then traffic through the rollout, 0 failed",
		Long: `upgrade changes the gateway image's tag, and nothing else, on the profile that runs
(dev or prod, as the cluster records it): it shows the diff and asks (or --yes),
says what is publicly known against the new version (e.g. 2.12.x's configuration
backup restore, issue #418), rolls the pods within the profile's bounds while
steady traffic runs through the forward, and reports requests sent, failed and
p50/p99, then the profile's checks. The image's repository stays the one
deployed; give a full --image to change it too.`,
		Example: `  apimdev upgrade --image-tag 2.11.2
  apimdev upgrade --image-tag 2.12.1 --yes --rate 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !tagRE.MatchString(tag) {
				return &usageError{fmt.Sprintf("--image-tag %q is not an image tag: give one such as 2.11.2", tag)}
			}
			a.adjust = func(c *config.Config) { c.Gateway.Image = withTag(c.Gateway.Image, tag) }
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, existing: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			if err := s.Resolve(cmd.Context()); err != nil {
				return err
			}
			if s.Recorded == nil {
				return fmt.Errorf("no gateway recorded in cluster %q to upgrade (run `apimdev up` first)", s.Config.Cluster.Name)
			}
			o.to = s.Recorded.Profile
			return a.rollout(cmd, s, o, "Roll the gateway to "+s.Config.Gateway.Image+"?")
		},
	}
	f := cmd.Flags()
	f.StringVar(&tag, "image-tag", "", "the gateway version (image tag) to roll to, e.g. 2.11.2")
	_ = cmd.MarkFlagRequired("image-tag")
	f.BoolVarP(&o.yes, "yes", "y", false, "apply without asking")
	rateFlag(f, "traffic during the rollout, requests/s (default 20)")
	f.StringVar(&o.trafficPath, "traffic-path", "", "path requested during the rollout (default: the health path)")
	f.StringArrayVar(&o.headers, "traffic-header", nil, "header for the traffic, NAME=VALUE; ${VAR} takes VALUE from the environment")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long the rollout may take")
	return cmd
}

// withTag is image with its tag (or digest) replaced by tag.
func withTag(image, tag string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + ":" + tag
}
