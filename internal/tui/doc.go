// Package tui is apimdev's terminal wizard: a form for the gateway's
// settings, a live view of the `up` pipeline, the result with the forwarded
// URLs and smoke table, and the promote view.
//
// It owns no flow logic. It drives the pipeline through the Runner interface
// (PipelineRunner wraps pipeline.Session; tests use a fake) and shows the
// events the steps report, which arrive as messages through Program.Send. All
// I/O happens in tea.Cmds; Update never blocks. The TUI draws to stderr.
//
// The token is a secret: the form masks it, and only its redacted form, its
// gateway id and its expiry are ever shown.
//
// It must not import cli.
package tui
