package cli

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/relay"
)

// relayCommand is the in-cluster end of `backend add`'s tunnel: what the
// relay's pod runs. Hidden: nobody runs it by hand.
func (a *app) relayCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "relay",
		Short:  "Run the in-cluster relay to backends on the developer's machine (the relay pod's program)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(relay.ControlPort))
			if err != nil {
				return fmt.Errorf("the relay cannot listen on its port %d: %w", relay.ControlPort, err)
			}
			errw := a.streams.Err
			fmt.Fprintf(errw, "%s relay listening on :%d\n", time.Now().UTC().Format(time.RFC3339), relay.ControlPort)
			// The key comes from the pod's Secret: only apimdev, which
			// reads it through the API server, may take the tunnel.
			return relay.Serve(cmd.Context(), l, relay.ServerOptions{Key: a.getenv(relay.KeyEnv), Logf: func(format string, args ...any) {
				fmt.Fprintf(errw, time.Now().UTC().Format(time.RFC3339)+" "+format+"\n", args...)
			}})
		},
	}
}
