// Package demo owns `apimdev up --demo`: a gateway with no Azure behind it.
// It runs the project's stand-in gateway (test/standin-gateway: stand-in, not
// Azure API Management) and the stand-in's configuration service in the
// cluster, with a signing key and a subscription key generated on the user's
// machine and a gateway token minted here with the stand-in's documented
// scheme (HMAC-SHA512 over "id\nexpiry", base64).
//
// The demo is recorded in the cluster (the record ConfigMap in the demo
// namespace, and the demo endpoint in what up applied), so other commands can
// label their output and refuse to carry it to a real cluster.
//
// Proxy APIs added with `apimdev demo api add` are a list in the record
// ConfigMap, which the configuration service reads as STANDIN_APIS; every
// `up --demo` carries the cluster's list over (apis.go).
//
// It must not import cli, tui or pipeline.
package demo
