package gateway

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Waiting is what a waiting container's reason says of its start: the one
// list of the kubelet's waiting reasons that the gateway's rollout, the
// demo's configuration service and the backends' relay each read.
type Waiting int

const (
	// WaitingStarting: on its way (ContainerCreating, PodInitializing), or
	// the kubelet's start-up race on a new node (TransientWaiting), which
	// passes by itself.
	WaitingStarting Waiting = iota
	// WaitingPull: one pull failed (ErrImagePull); the kubelet retries,
	// then says ImagePullBackOff. Fatal for an image that only this
	// machine has (the kubelet has nowhere to pull it from).
	WaitingPull
	// WaitingImage: the image cannot be had (ImagePullBackOff,
	// ErrImageNeverPull, InvalidImageName).
	WaitingImage
	// WaitingConfig: a Secret or ConfigMap the container needs is missing
	// (CreateContainerConfigError).
	WaitingConfig
	// WaitingCrash: the process keeps exiting (CrashLoopBackOff).
	WaitingCrash
	// WaitingCreate: the runtime could not create or start the container
	// (CreateContainerError, RunContainerError).
	WaitingCreate
)

// ClassifyWaiting reads a waiting container's state; nil is
// WaitingStarting.
func ClassifyWaiting(w *corev1.ContainerStateWaiting) Waiting {
	if w == nil || TransientWaiting(w.Message) {
		return WaitingStarting
	}
	switch w.Reason {
	case "ErrImagePull":
		return WaitingPull
	case "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
		return WaitingImage
	case "CreateContainerConfigError":
		return WaitingConfig
	case "CrashLoopBackOff":
		return WaitingCrash
	case "CreateContainerError", "RunContainerError":
		return WaitingCreate
	}
	return WaitingStarting
}

// CannotStart says the container will not start without a change from
// the user. pullRetried: a failed pull is waited out (an image from a
// registry, which a network blip can fail once); false for an image that
// only this machine has.
func (w Waiting) CannotStart(pullRetried bool) bool {
	if w == WaitingPull {
		return !pullRetried
	}
	return w > WaitingPull
}

// TransientWaiting says a container's waiting message is the kubelet's
// start-up race on a new or busy node (its Secret or ConfigMap cache not
// synced yet: "failed to sync secret cache: timed out waiting for the
// condition"), which passes by itself, so it must not fail the rollout.
func TransientWaiting(msg string) bool {
	return strings.Contains(msg, "failed to sync secret cache") || strings.Contains(msg, "failed to sync configmap cache")
}
