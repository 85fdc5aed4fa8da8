// Command standin-gateway is TEST INFRASTRUCTURE for apimdev: a stand-in for
// the Azure API Management self-hosted gateway container, which cannot be pulled
// where the end-to-end tests run. It is not Azure API Management and says so on
// every log line and every response.
//
// Usage:
//
//	standin-gateway [gateway]          the gateway (default; or STANDIN_MODE=gateway)
//	standin-gateway config-service     the configuration endpoint it polls
//	standin-gateway mint-token --id ID (--expiry yyyyMMddHHmm | --valid-for DURATION)
//
// See README.md in this directory for the environment each mode reads.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// main is the only place that exits.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin-gateway (stand-in, not Azure API Management):", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// lookupEnv is os.LookupEnv, or a map in tests.
type lookupEnv func(string) (string, bool)

// run picks the mode from the first argument, else STANDIN_MODE, else gateway.
// Servers log to stdout, like the real container; mint-token prints only the
// token on stdout.
func run(ctx context.Context, args []string, env lookupEnv, stdout, stderr io.Writer) error {
	mode, rest := "", args
	if len(args) > 0 {
		mode, rest = args[0], args[1:]
	} else if m, ok := env("STANDIN_MODE"); ok {
		mode = m
	}
	switch mode {
	case "", "gateway":
		return runGateway(ctx, settings{env}, stdout)
	case "config-service":
		return runConfigService(ctx, settings{env}, stdout)
	case "mint-token":
		return mintToken(rest, settings{env}, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown mode %q\n%s", mode, usage)}
}

const usage = `standin-gateway: a stand-in for the Azure API Management self-hosted gateway (test infrastructure)

  standin-gateway [gateway]        serve as the gateway (default; STANDIN_MODE=gateway)
  standin-gateway config-service   serve the configuration endpoint (STANDIN_MODE=config-service)
  standin-gateway mint-token --id ID (--expiry yyyyMMddHHmm | --valid-for DURATION)
                                   print a token signed with $STANDIN_GATEWAY_KEY
`
