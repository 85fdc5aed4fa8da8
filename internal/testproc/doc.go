// Package testproc runs a test binary as a helper process, for tests that
// must show what happened to a process: that it was stopped, or, harder,
// that it was not signalled at all (Proc.StillRuns says how it knows). The
// helper prints "ready", prints the name of each SIGWINCH it gets and goes
// on, and SIGTERM (what stopping a background forward sends) ends it; on
// Windows it just runs until it is ended. It can also hold the ports its
// --http-port and --https-port arguments name, as the background forward
// does.
//
// A test binary becomes the helper when Env is set: its TestMain (or an
// init function) calls MainIfHelper first. Start runs one, detached as
// StartDetachedForward detaches the forward.
//
// It is for tests only; nothing outside _test.go files imports it. It
// imports nothing from the rest of apimdev, so that state's own tests can use
// it: a caller that needs the helper's process identity reads it in
// Options.Started, before anything waits for the helper.
package testproc
