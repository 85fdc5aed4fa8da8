// Command apimdev gives you a local Azure API Management self-hosted gateway
// on a kind cluster in one command. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/apimdev/apimdev/internal/cli"
)

func main() {
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
	}, os.Getenv)
	cancel()
	os.Exit(code)
}
