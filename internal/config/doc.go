// Package config owns apimdev's one typed, versioned configuration: the
// apimdev.yaml file, its strict decoding, defaults, the APIMDEV_* environment
// overrides and validation that reports every problem at once.
//
// Where the token comes from is configuration; the token itself is read by
// LoadToken and lives only in a token.Token. This package must not import the
// cluster, gateway, forward or cli packages.
package config
