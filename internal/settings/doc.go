// Package settings is where a command's settings are resolved, in one pure
// function (Resolve): from what the cluster records apimdev applied (its
// Record), the state directory's copy of it, and what the user asked for
// (apimdev.yaml, APIMDEV_* variables, flags), to the configuration the
// command works with and how the user's asks differ from what is deployed.
// "Every command converges to what is deployed" lives here.
//
// It owns the Record: its layout, its schema version and its encoding.
// Reading and writing the record's ConfigMap is pipeline's (a flow's step).
//
// It imports nothing from the rest of apimdev except config and gateway (no
// Kubernetes client, no Docker).
package settings
