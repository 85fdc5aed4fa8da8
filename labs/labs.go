// Package labs holds the workshop's labs as markdown, built into apimdev so
// `apimdev lab show N` works on a machine without this repository. The
// checks each lab ends with live in internal/labs.
package labs

import "embed"

// Files are the labs' markdown files.
//
//go:embed *.md
var Files embed.FS
