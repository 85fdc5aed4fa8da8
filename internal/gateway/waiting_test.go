package gateway

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestClassifyWaitingAndWhoWaitsItOut(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		reason, message string
		want            Waiting
		// cannot start: for an image from a registry, for one only this machine has
		registry, local bool
	}{
		{"ContainerCreating", "", WaitingStarting, false, false},
		{"ErrImagePull", "dial tcp: lookup mcr.microsoft.com: no such host", WaitingPull, false, true},
		{"ImagePullBackOff", "Back-off pulling image", WaitingImage, true, true},
		{"ErrImageNeverPull", "", WaitingImage, true, true},
		{"CreateContainerConfigError", `secret "gw-token" not found`, WaitingConfig, true, true},
		{"CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition", WaitingStarting, false, false},
		{"CrashLoopBackOff", "back-off 10s restarting failed container", WaitingCrash, true, true},
		{"RunContainerError", "", WaitingCreate, true, true},
	} {
		got := ClassifyWaiting(&corev1.ContainerStateWaiting{Reason: c.reason, Message: c.message})
		if got != c.want || got.CannotStart(true) != c.registry || got.CannotStart(false) != c.local {
			t.Errorf("%s %q: class %d (cannot start %v/%v), want %d (%v/%v)", c.reason, c.message, got,
				got.CannotStart(true), got.CannotStart(false), c.want, c.registry, c.local)
		}
	}
	if ClassifyWaiting(nil) != WaitingStarting {
		t.Error("nil is not WaitingStarting")
	}
}
