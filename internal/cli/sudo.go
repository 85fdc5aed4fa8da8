package cli

import (
	"context"
	"os/exec"
)

// sudoSelf is this apimdev, run again through sudo with args.
func sudoSelf(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "sudo", append([]string{self()}, args...)...)
}
