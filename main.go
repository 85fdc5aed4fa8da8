// Command apimdev gives you a local Azure API Management self-hosted gateway
// on a kind cluster in one command. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/apimdev/apimdev/internal/cli"
	"github.com/apimdev/apimdev/scripts/ci/runc-capdrop/capdrop"
)

func main() {
	// Installed as Docker's runc wrapper (apimdev docker install
	// --runtime-wrapper, only where the machine lacks CAP_SYS_RESOURCE), this
	// program is runc-capdrop and nothing else.
	if filepath.Base(os.Args[0]) == capdrop.Name {
		os.Exit(capdrop.Main(os.Args[1:]))
	}
	getenv := cli.ProtectSecrets() // before anything can start a process
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel() // first Ctrl-C: every step stops cleanly and says what exists
		<-sigs
		fmt.Fprintln(os.Stderr, "\ninterrupted twice: exiting now; `apimdev status` shows what exists")
		os.Exit(cli.ExitInterrupted)
	}()
	code := cli.Run(ctx, os.Args[1:], cli.Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		Terminal: term.IsTerminal(int(os.Stderr.Fd())),
	}, getenv)
	cancel()
	os.Exit(code)
}
