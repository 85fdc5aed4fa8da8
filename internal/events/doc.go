// Package events is the one stream every step of apimdev reports through.
//
// A step calls Start, then any number of Progress, and ends with Done or Fail
// (kind's Status.Start / End idiom). Sinks turn the stream into a face: Text
// for terminals and CI logs, JSON lines for machines, and the TUI's messages.
// Steps never write to stdout or stderr themselves.
//
// This package imports nothing from the rest of apimdev.
package events
