// Package gwlink tells the state of a gateway pod's link to its
// configuration endpoint (synced, refused, unreachable, untrusted, started
// from its backup, starting, or unknown) from the pod's log entries, with
// the evidence, the cause in a sentence and what to do.
//
// It reads the real self-hosted gateway's event names (text and JSON
// formats alike, as podlogs reads them) and the stand-in's messages. It
// never guesses: a log that decides nothing is Unknown. Peer discovery's
// DNS failures, backend failures in request logs and the backup volume's
// file permissions are not the configuration link.
//
// It imports nothing from the rest of apimdev except podlogs.
package gwlink
