package gwlink

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apimdev/apimdev/internal/podlogs"
)

// State is the state of a gateway pod's link to its configuration endpoint.
type State string

// The states, from the pod's log.
const (
	// Synced: the endpoint answered (initial sync completed, a poll found no
	// new events, settings updated).
	Synced State = "synced"
	// Refused: the endpoint refuses the gateway's credential (401/403), or
	// the gateway does not accept its own authentication settings.
	Refused State = "refused"
	// Unreachable: DNS, TCP or timeout failures calling the endpoint.
	Unreachable State = "unreachable"
	// Untrusted: the endpoint's TLS certificate is not trusted.
	Untrusted State = "untrusted"
	// FromBackup: the gateway started from its configuration backup.
	FromBackup State = "from backup"
	// Starting: the gateway logged its start, and no sync yet.
	Starting State = "starting"
	// Unknown: nothing in the log decides.
	Unknown State = "unknown"
)

// Link is a pod's link to its configuration endpoint, as its log shows it.
type Link struct {
	State State
	// Seen is the kubelet's time of the newest entry that decided State
	// (zero when Unknown).
	Seen time.Time
	// Event is that entry's event name (for Unknown: the last failure's
	// whose cause the log does not say, if any).
	Event string
	// Evidence is short: the event, and the first line of its message and
	// exception; for status lines and errors.
	Evidence string
}

// Cause is one sentence on what the state means.
func (l Link) Cause() string {
	switch l.State {
	case Synced:
		return "the gateway gets its configuration from the configuration endpoint"
	case Refused:
		if l.Event == "GatewayStartup" {
			return "the gateway does not accept its own authentication settings (config.service.auth), so it cannot ask the configuration endpoint"
		}
		return "the configuration endpoint refuses the gateway's credential (401/403)"
	case Unreachable:
		return "the gateway cannot reach its configuration endpoint (the name does not resolve, the connection fails or times out)"
	case Untrusted:
		return "the gateway does not trust the TLS certificate of its configuration endpoint"
	case FromBackup:
		return "the gateway started from its configuration backup, not from the configuration endpoint"
	case Starting:
		return "the gateway has started and not yet loaded its configuration from the endpoint"
	}
	if l.Evidence != "" {
		return "the gateway failed to load its configuration and its log does not say why"
	}
	return "the gateway's log says nothing about its link to the configuration endpoint (a quiet gateway, or one that logs at warn, logs nothing while all is well)"
}

// Fix is what to do about the state ("" when nothing is to be done).
func (l Link) Fix() string {
	switch l.State {
	case Refused:
		if l.Event == "GatewayStartup" {
			return "check the gateway's authentication settings (gateway.auth in apimdev.yaml: the Entra ID app, tenant and secret, or the token), then `apimdev up`"
		}
		return "regenerate the gateway's token in the Azure portal (API Management › Self-hosted gateways › the gateway › Deployment) and run `apimdev token rotate`; with Entra ID, check the app's role on the API Management instance"
	case Unreachable:
		return "check that the cluster resolves and reaches the configuration endpoint: DNS and egress from the kind nodes (proxy, firewall, VPN); `apimdev doctor` collects what helps"
	case Untrusted:
		return "trust the CA that signed the endpoint's certificate: give its PEM file with --ca-cert (gateway.caCertificates) and run `apimdev up`"
	case FromBackup:
		return "the gateway serves the configuration it saved last; see why the endpoint did not answer (`apimdev logs --level warn`)"
	case Starting:
		return "wait for the initial sync; if it does not come, see `apimdev logs`"
	case Unknown:
		return "see `apimdev logs --level info` (the prod profile logs at warn), or a longer --since"
	}
	return ""
}

var (
	// A refusal: the v2 API's ApiException and the v1 API's
	// HttpRequestException wording, both for 401 and 403.
	authRE = regexp.MustCompile(`StatusCode: (?:Unauthorized|Forbidden)\b|does not indicate success: (?:401|403)\b|\b(?:401|403) \((?:Unauthorized|Forbidden)\)`)
	// The v2 API's "not available" entry names the status as a word.
	// (UnauthorizedAccessException, a file permission, is not one.)
	statusWordRE = regexp.MustCompile(`\b(?:Unauthorized|Forbidden)\b`)
	startupAuth  = "No valid authentication was configured"
	tlsRE        = regexp.MustCompile(`RemoteCertificate|UntrustedRoot|PartialChain|The remote certificate is invalid|SSL connection could not be established|certificate verify failed|x509: |certificate signed by unknown authority|AuthenticationException`)
	netRE        = regexp.MustCompile(`(?i)name does not resolve|name or service not known|no such host|nodename nor servname|resource temporarily unavailable|connection refused|actively refused|connection timed out|network is unreachable|no route to host|i/o timeout|connection reset|TaskCanceledException|OperationCanceledException|SocketException`)
	// Markers of an entry about something else than the configuration link:
	// request logs and backends, peer discovery and heartbeats, the backup
	// volume.
	elsewhere = []string{"GatewayLogs", "Backend", "DotNetty", "RoundRobinNameResolver", "Neighborhood", "DnsDiscovery", "instance-discovery", "UdpHeartbeat", "P2PRateLimit", "BackupMetadataProvider", "FileBackupProvider", "FileConfigurationProvider"}
	// Markers of the configuration link.
	configMarks = []string{"ConfigurationApiClient", "ServiceConfigurationSource", "Gateway.Configuration.Client", "configuration.azure-api.net", "management.azure-api.net", "getConfiguration"}

	syncEvents  = map[string]bool{"ConfigInitialSyncCompleted": true, "ConfigurationUpdated": true, "NoNewEvents": true}
	pollEvent   = "GettingEventsFromApi"
	startEvents = map[string]bool{"HostBootstrapperStarting": true, "HostBootstrapperStarted": true, "TenantStarting": true, "TenantStarted": true,
		"ConfigStarted": true, "ConfigInitialSyncStarted": true, "LoadingConfiguration": true, "ComponentStarting": true, "ComponentStarted": true,
		"LocalBackupLocationNotFound": true, "LoadBackupLocationNotFound": true}
	failEvents = map[string]bool{"ConfigInitialSyncFailed": true, "ConfigurationApiV2NotAvailable": true}

	// The stand-in's slog messages (it has no event names yet).
	standin = []struct {
		prefix string
		kind   kind
		state  State
	}{
		{"configuration loaded; gateway ready", decides, Synced},
		{"configuration changed", decides, Synced},
		{"configuration fetched", decides, Synced},
		{"configuration endpoint answering again", decides, Synced},
		{"configuration endpoint refused the token", decides, Refused},
		{"Microsoft Entra ID refused", decides, Refused},
		{"the gateway token has expired", decides, Refused},
		{"configuration endpoint unreachable", decides, Unreachable},
		{"configuration endpoint's TLS certificate is not trusted", decides, Untrusted},
		{"started from configuration backup", decides, FromBackup},
		{"stand-in gateway starting", starts, Starting},
		{"configuration endpoint sent an unusable answer", fails, Unknown},
	}
)

// kind is what an entry does to the state.
type kind int

const (
	nothing kind = iota
	decides      // sets the state
	polls        // a poll: synced unless a failure stands
	starts       // a start line: starting when nothing was decided
	fails        // a failure whose cause the entry does not say
)

// read says what one entry tells of the link.
func read(e podlogs.Entry) (kind, State) {
	ev := e.Event
	if ev == "" {
		for _, s := range standin {
			if strings.HasPrefix(e.Message, s.prefix) {
				return s.kind, s.state
			}
		}
	}
	low := strings.ToLower(ev)
	switch {
	case strings.Contains(low, "backup") && (strings.Contains(low, "restored") || strings.Contains(low, "frombackup")):
		return decides, FromBackup
	case syncEvents[ev]:
		return decides, Synced
	case ev == pollEvent:
		return polls, Synced
	case startEvents[ev]:
		return starts, Starting
	}
	text := ev + "\n" + e.Source + "\n" + e.Message + "\n" + e.Exception
	for _, m := range elsewhere {
		if strings.Contains(text, m) && !failEvents[ev] {
			return nothing, ""
		}
	}
	switch {
	case ev == "ConfigurationApiV2NotAvailable" && statusWordRE.MatchString(e.Message+"\n"+e.Exception):
		return decides, Refused
	case strings.Contains(e.Message, startupAuth) || strings.Contains(e.Exception, startupAuth):
		return decides, Refused
	}
	config := failEvents[ev] || strings.Contains(e.Source, "Configuration")
	for _, m := range configMarks {
		config = config || strings.Contains(text, m)
	}
	// The gateway's own HTTP client is the configuration client: backends
	// go through DotNetty (above). A generic error entry with an
	// HttpRequestException is the configuration link failing.
	generic := (ev == "Error" || ev == "GatewayStartup") && strings.Contains(e.Exception, "HttpRequestException")
	if !config && !generic {
		return nothing, ""
	}
	failure := e.Message + "\n" + e.Exception
	switch {
	case authRE.MatchString(failure):
		return decides, Refused
	case tlsRE.MatchString(failure):
		return decides, Untrusted
	case netRE.MatchString(failure):
		return decides, Unreachable
	case failEvents[ev] || (e.Level == "error" || e.Level == "warn") && e.Exception != "":
		return fails, Unknown
	}
	return nothing, ""
}

// Classify tells a pod's link from its log entries, oldest first. Entries
// after now are not read (now zero: all are). The newest entry that
// decides wins; a poll (GettingEventsFromApi) is synced only when no
// failure stands, as the gateway logs it before every attempt; a start line
// is starting only while nothing was decided; a failure whose cause the log
// does not say (ConfigInitialSyncFailed after a refusal, say) keeps the
// cause known before it, and otherwise is Unknown, with its Evidence.
func Classify(entries []podlogs.Logged, now time.Time) Link {
	l := Link{State: Unknown}
	decided := false
	for _, e := range entries {
		if !now.IsZero() && e.Time.After(now) {
			continue
		}
		k, s := read(e.Entry)
		here := Link{State: s, Seen: e.Time, Event: e.Event, Evidence: evidence(e.Entry)}
		switch k {
		case decides:
			l, decided = here, true
		case polls:
			if l.State == Synced || l.State == Starting || !decided {
				l, decided = here, true
			}
		case starts:
			if !decided {
				l = here
			}
		case fails:
			if l.State == Refused || l.State == Unreachable || l.State == Untrusted {
				continue
			}
			here.Seen = time.Time{}
			l, decided = here, true
		}
	}
	return l
}

// rank orders states from the worst.
var rank = map[State]int{Refused: 0, Untrusted: 1, Unreachable: 2, FromBackup: 3, Starting: 4, Synced: 5, Unknown: 6}

// Worst is the link that says most against the gateway: the worst state
// among the pods' links (refused, untrusted, unreachable, from backup,
// starting, synced; unknown last, as a pod that logged nothing says
// nothing), the newest of that state. When every pod is refused,
// unreachable or untrusted, that is the gateway's state. No links: Unknown.
func Worst(links []Link) Link {
	w := Link{State: Unknown}
	for _, l := range links {
		rl, rw := rank[l.State], rank[w.State]
		if rl < rw || rl == rw && l.Seen.After(w.Seen) {
			w = l
		}
	}
	return w
}

// evidence is the event and the first line of the message and of the
// exception, each cut short.
func evidence(e podlogs.Entry) string {
	var parts []string
	for _, s := range []string{e.Event, e.Message, e.Exception} {
		s, _, _ = strings.Cut(s, "\n")
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, cut(s, 140))
		}
	}
	return strings.Join(parts, ": ")
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
