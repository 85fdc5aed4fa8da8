// Package kit owns the offline workshop kit: one tar holding the kind node
// image, the gateway image (pinned tag), the statsd exporter image, the
// demo's stand-in image when asked, and apimdev's configuration (never a
// token), described by manifest.json with a SHA-256 for every file.
//
// Create saves images from the local Docker engine (docker save); Load checks
// every checksum before anything reaches Docker, then loads each image that
// Docker does not already hold (docker load). Progress, with percentages, is
// reported through a Progress function so the event stream can show it.
//
// It talks to Docker only through its Docker interface and must not import
// cli, tui or pipeline.
package kit
