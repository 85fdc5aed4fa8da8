package cli

import "testing"

// The relay pod's program is apimdev itself: `apimdev relay` exists, takes
// no arguments and stays out of --help.
func TestRelayCommandIsHidden(t *testing.T) {
	root := (&app{getenv: func(string) string { return "" }}).rootCommand()
	cmd, _, err := root.Find([]string{"relay"})
	if err != nil || cmd.Name() != "relay" {
		t.Fatalf("no relay command: %v", err)
	}
	if !cmd.Hidden {
		t.Fatal("apimdev relay shows in --help")
	}
	if cmd.Args(cmd, []string{"x"}) == nil {
		t.Fatal("apimdev relay takes an argument")
	}
}
