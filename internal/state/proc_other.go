//go:build !linux && !darwin && !windows

package state

import (
	"errors"
	"runtime"
)

// identityOf: apimdev reads start times on Linux, macOS and Windows only;
// elsewhere no process is ever proven to be the forward, so none is
// signalled.
func identityOf(int) (Identity, error) {
	return Identity{}, errors.New("apimdev cannot read process start times on " + runtime.GOOS)
}

func terminateIf(int, Identity) (bool, error) { return false, nil }

func commandLine(int) ([]string, error) { return nil, errNoCommandLine }

func processes() []int { return nil }
