package cluster

import (
	"context"
	"os"
	"runtime"
	"time"
)

// DockerAnswers says whether the engine from the environment answers now.
func DockerAnswers(ctx context.Context) bool {
	d, err := NewDocker()
	if err != nil {
		return false
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = d.Ping(ctx)
	return err == nil
}

// DockerFixHere says how to get a Docker engine running on this machine.
func DockerFixHere() string {
	b, _ := os.ReadFile("/etc/os-release")
	return DockerFix(runtime.GOOS, string(b))
}
