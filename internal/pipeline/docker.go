package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/scripts"
)

// DockerAnswers says whether the engine from the environment answers now.
func DockerAnswers(ctx context.Context) bool {
	d, err := cluster.NewDocker()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = d.Ping(ctx)
	return err == nil
}

// DockerFix says how to get a Docker engine running on this machine.
func DockerFix() string {
	b, _ := os.ReadFile("/etc/os-release")
	return cluster.DockerFix(runtime.GOOS, string(b))
}

// CanInstallDocker says whether InstallDocker can install an engine here:
// Debian, Ubuntu or a derivative.
func CanInstallDocker() bool {
	b, _ := os.ReadFile("/etc/os-release")
	return runtime.GOOS == "linux" && cluster.DebianLike(string(b))
}

// InstallDocker installs Debian's docker.io and starts dockerd, with the
// runc wrapper where this kernel's capabilities need it: apimdev's
// scripts/ci/ensure-docker.sh (embedded), its output to out. It needs root.
func InstallDocker(ctx context.Context, out io.Writer) error {
	if !CanInstallDocker() {
		return errors.New("apimdev installs a Docker engine on Debian and Ubuntu only: " + cluster.DockerFix(runtime.GOOS, ""))
	}
	if os.Geteuid() != 0 {
		return &rootError{}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir, err := scripts.Extract(filepath.Join(cache, "apimdev", "scripts"))
	if err != nil {
		return fmt.Errorf("writing the install script: %w", err)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(dir, "ci", "ensure-docker.sh"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("installing and starting Docker: %w", err)
	}
	return nil
}

type rootError struct{}

func (*rootError) Error() string { return "installing Docker needs root" }
func (*rootError) Hint() string  { return "run it with sudo: sudo apimdev docker install" }
