package standinlog

// Event names and sources. Where the real gateway's log has the event (in
// public issues, docs and blogs collected for this project), the stand-in uses
// its name, level and source; Table says which row of that record each comes
// from. Events marked "stand-in's own" have no line in the record: the stand-in
// named them, and a reader must not expect a real gateway to log them.
const (
	// Start and configuration sync, by link state.
	EvHostStarting           = "HostBootstrapperStarting"
	EvHostStarted            = "HostBootstrapperStarted"
	EvConfigStarted          = "ConfigStarted"
	EvGatewayStartup         = "GatewayStartup"
	EvSyncStarted            = "ConfigInitialSyncStarted"
	EvSyncCompleted          = "ConfigInitialSyncCompleted"
	EvSyncFailed             = "ConfigInitialSyncFailed"
	EvGettingEvents          = "GettingEventsFromApi"
	EvNoNewEvents            = "NoNewEvents"
	EvAPIv2NotAvailable      = "ConfigurationApiV2NotAvailable"
	EvError                  = "Error"
	EvBackupLocationNotFound = "LocalBackupLocationNotFound"
	EvRequest                = "GatewayLogs"

	// The stand-in's own.
	EvStartedFromBackup      = "StandinConfigRestoredFromBackup"
	EvConfigurationChanged   = "StandinConfigurationChanged"
	EvAPIAvailableAgain      = "StandinConfigurationApiAvailableAgain"
	EvInvalidAnswer          = "StandinConfigurationApiInvalidAnswer"
	EvEntraRefused           = "StandinAzureAdTokenRefused"
	EvBackupEnabled          = "StandinBackupEnabled"
	EvBackupNotWritable      = "StandinBackupLocationNotWritable"
	EvBackupWritten          = "StandinBackupWritten"
	EvBackupFailed           = "StandinBackupFailed"
	EvBackupUnusable         = "StandinBackupUnusable"
	EvTokenExpired           = "StandinGatewayTokenExpired"
	EvTokenExpiringSoon      = "StandinGatewayTokenExpiringSoon"
	EvTokenUnparsable        = "StandinGatewayTokenUnparsable"
	EvSettingProblem         = "StandinSettingProblem"
	EvGatewayName            = "StandinGatewayName"
	EvMetrics                = "StandinMetrics"
	EvUDPListenerFailed      = "StandinUdpListenerFailed"
	EvBusyHook               = "StandinBusyHook"
	EvStopping               = "StandinHostStopping"
	EvStopped                = "StandinHostStopped"
	EvHTTPServer             = "StandinHttpServerError"
	EvConfigServiceListening = "StandinConfigServiceListening"
	EvConfigServiceStopping  = "StandinConfigServiceStopping"
	EvConfigServiceRequest   = "StandinConfigServiceRequest"
	EvConfigServed           = "StandinConfigurationServed"
	EvConfigRefused          = "StandinConfigurationRequestRefused"
	EvTokenRequestRefused    = "StandinTokenRequestRefused"
	EvAccessTokenGranted     = "StandinAccessTokenGranted"
	EvConfigServicePrivateCA = "StandinConfigServicePrivateCA"
	EvConfigServiceNoSubKeys = "StandinConfigServiceNoSubscriptionKeys"
	EvConfigServiceAPI       = "StandinConfigServiceApi"
	EvConfigServiceBadAPIs   = "StandinConfigServiceBadApis"
)

// Sources (components). The record's where it names one for the event.
const (
	SrcHost             = "HostBootstrapper" // the record's start lines name no source: the stand-in's choice
	SrcComposite        = "CompositeConfigurationRepositoryProvider"
	SrcRepository       = "ConfigurationRepositoryProvider"
	SrcAPIClient        = "ConfigurationApiClient"
	SrcEventLoop        = "EntityEventLoop"
	SrcBackupMetadata   = "BackupMetadataProvider"
	SrcFileBackup       = "FileBackupProvider"
	SrcRequest          = "GatewayLogs"
	SrcStandin          = "StandinGateway"
	SrcStandinTelemetry = "StandinTelemetry"
	SrcConfigService    = "StandinConfigService"
)

// Row is one line of the event table: a state the stand-in can be in, the
// event it logs for it, and the record row the name, level and source come from.
type Row struct {
	State  string
	Event  string
	Level  string // as the JSON format writes it
	Source string
	Record string // the row in the reference record, or why there is none
}

// Table is the event table for the link states (README.md repeats it).
var Table = []Row{
	{"start", EvHostStarting, "Info", SrcHost, "1.4 (no source in the record)"},
	{"started, listening", EvHostStarted, "Info", SrcHost, "1.15 (no source in the record)"},
	{"endpoint set", EvConfigStarted, "Info", SrcComposite, "1.19"},
	{"endpoint or token not set", EvGatewayStartup, "Error", SrcHost, "2.2 (message and source are the stand-in's)"},
	{"sync started", EvSyncStarted, "Info", SrcRepository, "1.20"},
	{"sync completed", EvSyncCompleted, "Info", SrcRepository, "1.27"},
	{"polling", EvGettingEvents, "Verbose", SrcAPIClient, "1.29"},
	{"polled, no change", EvNoNewEvents, "Verbose", SrcEventLoop, "1.30"},
	{"refused (401/403)", EvAPIv2NotAvailable, "Warning", SrcAPIClient, "2.1 (source inferred from 3.6; the record's exception is cut after StatusCode)"},
	{"unreachable (DNS, TCP, timeout, 5xx)", EvError, "Error", SrcAPIClient, "3.1-3.6 (DNS wording; the TCP, timeout and 5xx wordings are .NET's usual ones, not in the record)"},
	{"untrusted (TLS)", EvError, "Error", SrcAPIClient, "none for TLS: event as 3.1, exception in .NET's usual wording, not from the record"},
	{"backup missing", EvBackupLocationNotFound, "Warning", SrcBackupMetadata, "5.1, 5.2"},
	{"initial sync failed, empty backup", EvSyncFailed, "Error", SrcRepository, "5.4 (the stand-in names its own backup file)"},
	{"started from backup", EvStartedFromBackup, "Warning", SrcFileBackup, "none: the stand-in's own (the record has no such line)"},
	{"request", EvRequest, "Info", SrcRequest, "section 7, GatewayLogs (field names from Azure Monitor's GatewayLogs)"},
	{"proxy API: backend refused, reset, unresolvable (502)", EvRequest, "Info", SrcRequest, "section 3 traps, #274: lastError reason BackendConnectionFailure, \"Name does not resolve\" (the other messages are the stand-in's)"},
	{"proxy API: backend timeout (504)", EvRequest, "Info", SrcRequest, "section 3 traps, #290: the TaskCanceledException (reason Timeout is the stand-in's name: the record has none)"},
}
