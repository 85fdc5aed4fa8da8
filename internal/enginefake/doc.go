// Package enginefake is a Docker Engine for tests: images held as the
// archives `docker save` writes, with content-derived IDs and names on
// them; containers with a state (running, exited, paused); ping, version
// and info answers a test can set. Its Engine has every method of
// cluster.Docker (and so of kit.Docker), counts the calls it gets, and is
// safe for concurrent use.
//
// It is for tests only; nothing outside _test.go files imports it. It
// imports only the Docker API's types, not apimdev's packages, so the
// packages it stands in for can use it in their own tests; each user
// asserts the interface it needs in its test files.
package enginefake
