package pipeline

import (
	"context"
	"os"
	"runtime"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
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
