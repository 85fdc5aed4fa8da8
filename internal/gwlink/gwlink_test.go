package gwlink

import (
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/podlogs"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// entries groups lines of one pod, a second apart, as apimdev logs does.
func entries(lines ...string) []podlogs.Logged {
	var out []podlogs.Logged
	g := &podlogs.Grouper{Emit: func(l podlogs.Logged) { out = append(out, l) }}
	for i, s := range lines {
		g.Add(podlogs.Line{Time: t0.Add(time.Duration(i) * time.Second), Pod: "p", Text: s})
	}
	g.Flush()
	return out
}

// Every line of a record of the real gateway's logs collected from public
// sources (issues of Azure/api-management-self-hosted-gateway, Microsoft's
// docs, a blog), verbatim, named by the record's row, source and event,
// classified alone.
var reference = []struct {
	name, line string
	want       State
}{
	{"1.1 CloudWithChris untagged", `WARNING: ca-certificates.crt does not contain exactly one certificate or CRL: skipping`, Unknown},
	{"1.2 CloudWithChris untagged", `version: 1.3.0.0`, Unknown},
	{"1.3 CloudWithChris untagged", `commit: a1434b5a6f41a3b878cbb27ec4d7b69b5c45b5af`, Unknown},
	{"1.4 CloudWithChris HostBootstrapperStarting", `[Info] 2021-06-3T03:25:12.586 [HostBootstrapperStarting]`, Starting},
	{"1.5 CloudWithChris LoadingConfiguration", `[Info] 2021-06-3T03:25:12.613 [LoadingConfiguration], message: https://rb-azure-apim.management.azure-api.net/subscriptions/[…]/resourceGroups/rb-aks-rg/providers/Microsoft.ApiManagement/service/rb-azure-apim/gateways/getConfiguration?api-version=2018-06-01-preview, source: ServiceConfigurationSource`, Starting},
	{"1.6 CloudWithChris ConfigurationUpdated", `[Info] 2021-06-3T03:25:12.931 [ConfigurationUpdated], message: Updated settings: tenant.id, tenant.name, config.enc, config.enc.keys.primary, config.enc.keys.secondary, config.cert.privatekey.password, deployment.dataset.id, logs.applicationinsights.endpoint, policy.qouta.sync.table.connection, events.snapshot.initial.connection, events.snapshot.private.master.connection, events.table.connection, inspector.container.connection, deployment.instance.region, deployment.instance.gateway-id, deployment.id, deployment.name, config.mode, source: ServiceConfigurationSource`, Synced},
	{"1.7 CloudWithChris ComponentStarting", `[Info] 2021-06-3T03:25:12.933 [ComponentStarting], message: ExternalConfigurationHeartbeat`, Starting},
	{"1.8 CloudWithChris ComponentStarted", `[Info] 2021-06-3T03:25:12.933 [ComponentStarted], message: ExternalConfigurationHeartbeat`, Starting},
	{"1.9 CloudWithChris ComponentStarting", `[Info] 2021-06-3T03:25:12.933 [ComponentStarting], message: ExternalConfigurationMonitor`, Starting},
	{"1.10 CloudWithChris ComponentStarted", `[Info] 2021-06-3T03:25:12.933 [ComponentStarted], message: ExternalConfigurationMonitor`, Starting},
	{"1.11 CloudWithChris SelfAddressDiscovery", `[Info] 2021-06-3T03:25:12.936 [SelfAddressDiscovery], message: Rate limit is running in UDP broadcast mode. Discovering local node addresses to ignore loopback datagrams..., source: P2PRateLimitSignalListenerService`, Unknown},
	{"1.12 CloudWithChris NeighborhoodChangeDetected", `[Info] 2021-06-3T03:25:12.938 [NeighborhoodChangeDetected], message: [] --> [255.255.255.255: 255.255.255.255], source: UdpHeartbeatSender`, Unknown},
	{"1.13 CloudWithChris untagged", `Now listening on: http://0.0.0.0:8080`, Unknown},
	{"1.14 CloudWithChris untagged", `Now listening on: https://0.0.0.0:8081`, Unknown},
	{"1.15 CloudWithChris HostBootstrapperStarted", `[Info] 2021-06-3T03:25:13.041 [HostBootstrapperStarted]`, Starting},
	{"1.16 CloudWithChris TenantStarting", `[Info] 2021-06-3T03:25:13.138 [TenantStarting], message: 60b8f459c9afe30001d77d04`, Starting},
	{"1.17 CloudWithChris KubernetesIngressModeDisabled", `[Info] 2021-06-3T03:25:13.345 [KubernetesIngressModeDisabled], source: KubernetesConfigurationRepositoryProvider`, Unknown},
	{"1.18 CloudWithChris ConfigStarted", `[Info] 2021-06-3T03:25:13.686 [ConfigStarted], source: CompositeConfigurationRepositoryProvider`, Starting},
	{"1.19 CloudWithChris ConfigStarted", `[Info] 2021-06-3T03:25:13.686 [ConfigStarted], message: Connected service is enabled. 'config.service.endpoint' is set., source: CompositeConfigurationRepositoryProvider`, Starting},
	{"1.20 CloudWithChris ConfigInitialSyncStarted", `[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider`, Starting},
	{"1.21 CloudWithChris EventSnapshotElected", `[Info] 2021-06-3T03:25:14.043 [EventSnapshotElected], message: provider: storage, uri: https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip, rev: 18, source: events.snapshot`, Unknown},
	{"1.22 CloudWithChris ConfigurationLoaded", `[Info] 2021-06-3T03:25:14.099 [ConfigurationLoaded], message: https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip, source: events.snapshot.storage.private`, Unknown},
	{"1.23 CloudWithChris OperationRouteTableRebuildStarted", `[Info] 2021-06-3T03:25:14.368 [OperationRouteTableRebuildStarted], message: echo-api;rev=1, source: ApiRouter`, Unknown},
	{"1.24 CloudWithChris OperationRouteTableRebuildCompleted", `[Info] 2021-06-3T03:25:14.398 [OperationRouteTableRebuildCompleted], message: echo-api;rev=1, source: ApiRouter`, Unknown},
	{"1.25 CloudWithChris EventSnapshotRestored", `[Info] 2021-06-3T03:25:14.420 [EventSnapshotRestored], message: revision: 00000012, datasetId: 66q8h6gxqilk8i4, source: ConfigurationRepositoryProvider`, Unknown},
	{"1.26 CloudWithChris EventsSuccessfullyRestored", `[Info] 2021-06-3T03:25:14.633 [EventsSuccessfullyRestored], source: ConfigurationRepositoryProvider`, Unknown},
	{"1.27 CloudWithChris ConfigInitialSyncCompleted", `[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted], source: ConfigurationRepositoryProvider`, Synced},
	{"1.28 CloudWithChris TenantStarted", `[Info] 2021-06-3T03:25:14.636 [TenantStarted], message: 60b8f459c9afe30001d77d04 00:00:01.5929626`, Starting},
	{"1.29 #328 GettingEventsFromApi", `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8157906Z"","eventType":"GettingEventsFromApi","message":"uri: https://dev1-api-managementconfig.apim.dev1.company,com///gateways/self-hosted-gw-eastus/events?$top=100&$skiptoken=000006fe, dataset-id: ou32zolgxrgslmq, request-id: f49b5c66-0032-43da-b572-b7a9dfa39988","source":"ConfigurationApiClient"}`, Synced},
	{"1.30 #328 NoNewEvents", `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8288362Z"","eventType":"NoNewEvents","source":"EntityEventLoop"}`, Synced},
	{"1.31 #328 SendingHeartbeat", `{"level":"Verbose","timestamp":"2025-03-10T20:52:05.6216898Z"","eventType":"SendingHeartbeat","message":"Sending heartbeat to 0 instances","source":"UdpHeartbeatSender"}`, Unknown},
	{"1.32 #328 HeartbeatSent", `{"level":"Verbose","timestamp":"2025-03-10T20:52:05.6217020Z"","eventType":"HeartbeatSent","source":"UdpHeartbeatSender"}`, Unknown},
	{"1.33 #328 RequestReceived", `{"level":"Verbose","timestamp":"2025-03-10T21:03:31.2426620Z"","eventType":"RequestReceived","apiId":"open-api","operationId":"return-headers-operation","subscriptionId":"debug-subscription","tags":0,"httpMethod":"GET","source":"SingleThreadedBackendChannelPool","serviceName":"apim-gateway","message":"protocol=Http1","transportError":0,"httpError":0}`, Unknown},
	{"1.34 #328 DebugContextNotRequested", `{"level":"Verbose","timestamp":"2025-03-10T20:48:56.1551699Z"","eventType":"DebugContextNotRequested","tags":0,"httpMethod":"GET","source":"DebugContextProvider","serviceName":"apim-gateway","transportError":0,"httpError":0}`, Unknown},
	{"1.35 SHGLogViewer HostBootstrapperStarting (the C# comment's // dropped; \u001b is ESC)", "\u001b[37m[Info] 2022-05-12T06:16:58.790 [HostBootstrapperStarting]\u001b[0m", Starting},
	{"1.36 SHGLogViewer MyAddresses (the C# comment's // dropped)", `[37m[Info] 2022 - 05 - 12T06: 16:58.803[MyAddresses], message: 127.0.0.1, 192.168.0.2, source: P2PRateLimitSignalListenerService, correlationId: 6cf0f128 - 408b - 40b8 - 934a - 21145dd4b333`, Unknown},
	{"2.1 PR#371 ConfigurationApiV2NotAvailable", `{"level":"Warning","timestamp":"2026-02-17T09:55:03.2622319Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://gf-api-apimv2-teamiotcore-d-azwe.configuration.azure-api.net/gateways/gf-kubernetes-selfhostedgateway/events?$top=100&$skiptoken=000002ae%22,%22exception%22:%22Gateway.Configuration.Client.ApiException: StatusCode: Forbidden, Cont`, Refused},
	{"2.2 #269 GatewayStartup", ` [Error] [GatewayStartup], message: No valid authentication was configured for the configuration API. The sup`, Refused},
	{"2.3 #37 Error", `{"level":"Error","timestamp":"2021-10-25T05:30:52.6744551Z","eventType":"Error","exception":"System.Net.Http.HttpRequestException: Response status code does not indicate success: 400 (Bad Request).\n   at System.Net.Http.HttpResponseMessage.EnsureSuccessStatusCode()\n   at Gateway.Host.AspNetCore.ExternalConfiguration.ServiceConfigurationSource.HandleConfigurationError(HttpResponseMessage response) in D:\\a\\1\\s\\Proxy\\Gateway.Host.AspNetCore\\ExternalConfiguration\\ServiceConfigurationSource.cs:line 212\n   at Gateway.Host.AspNetCore.ExternalConfiguration.ServiceConfigurationSource.<>c__DisplayClass19_0.<<UpdateConfiguration>b__1>d.MoveNext() in D:\\a\\1\\s\\Proxy\\Gateway.Host.AspNetCore\\ExternalConfiguration\\ServiceConfigurationSource.cs:line 179\n--- End of stack trace from previous location where exception was thrown ---\n   at Polly.Retry.AsyncRetryEngine.ImplementationAsync[TResult](Func3 action, Context context, CancellationToken cancellationToken, ExceptionPredicates shouldRetryExceptionPredicates, ResultPredicates1 shouldRetryResultPredicates, Func5 onRetryAsync, Int32 permittedRetryCount, IEnumerable1 sleepDurationsEnumerable, Func4 sleepDurationProvider, Boolean continueOnCapturedContext)","source":"ServiceConfigurationSource"}`, Unknown},
	{"3.1 #34 Error", `[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve`, Unreachable},
	{"3.2 #34 untagged", `---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve`, Unknown},
	{"3.3 #34 untagged", `at System.Net.Http.ConnectHelper.ConnectAsync(String host, Int32 port, CancellationToken cancellationToken)`, Unknown},
	{"3.4 #34 untagged", `at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean allowHttp2, CancellationToken cancellationToken)`, Unknown},
	{"3.5 #164 untagged", `   at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean async, CancellationToken cancellationToken)`, Unknown},
	{"3.6 #164 untagged", `   at Gateway.Configuration.Client.ConfigurationApiClient.SendRequestToApiAsync(Ht`, Unknown},
	{"3.7 #339 ErrorResolvingHostname", `←[31m{"level":"Error","timestamp":"2025-03-31T12:14:04.1092413Z"","eventType":"ErrorResolvingHostname","exception":"System.Net.Internals.SocketExceptionFactory+ExtendedSocketException (00000001, 11): Resource temporarily unavailable\n   at System.Net.Dns.GetHostEntryOrAddressesCore(String hostName, Boolean justAddresses, AddressFamily addressFamily, ValueStopwatch stopwatch)\n`, Unknown},
	{"3.8 #193 DnsDiscoveryFailed", `[DnsDiscoveryFailed], message: Failed to discover external instances on DNS name 000-xx-xx-xx-azure-api-management-gateway-instance-discovery. Details: One or more errors occurred. (Resource temporarily unavailable), source: Neighborhood`, Unknown},
	{"3.9 #193 ErrorResolvingHostname", `[ErrorResolvingHostname]`, Unknown},
	{"3.10 #193 DnsDiscoveryFailed", `[33m[Warn] 2023-02-2T04:54:07.276 [DnsDiscoveryFailed], message: Failed to discover external instances`, Unknown},
	{"5.1 azure-docs#58769 LocalBackupLocationNotFound", `[LocalBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider`, Starting},
	{"5.2 CloudWithChris LoadBackupLocationNotFound", `[Warn] 2021-06-3T03:25:12.570 [LoadBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider`, Starting},
	{"5.3 CloudWithChris LoadBackupLocationNotFound", `[Warn] 2021-06-3T03:25:13.376 [LoadBackupLocationNotFound], message: /apim/config, source: FileBackupProvider`, Starting},
	{"5.4 #164 ConfigInitialSyncFailed", `[Error]2022-10-12T02:54:48.369 [ConfigInitialSyncFailed], exception: Gateway.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json`, Unknown},
	{"5.5 #164 untagged", "at Gateway.Configuration.FileSystem.FileConfigurationProvider`1.GetAsync(CancellationToken cancellation) in D:\\a\\1\\s\\Pr", Unknown},
	{"5.6 #34 Error", `[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve`, Unreachable},
	// Traps quoted in the record's prose: backend request logs (#274), a
	// backend timeout (#290), a request entry (section 7).
	{"3 #274 GatewayLogs", `[Info] 2024-01-19T07:38:12.752 [GatewayLogs], isRequestSuccess: False, totalTime: 285, category: GatewayLogs, …, responseCode: 500, …, lastError: {`, Unknown},
	{"3 #274 reason", `"reason": "BackendConnectionFailure",`, Unknown},
	{"3 #274 message", `"message": "Name does not resolve",`, Unknown},
	{"3 #274 DnsResolutionStarted", `[Info] 2024-01-19T07:39:54.667 [DnsResolutionStarted], message: unused, source: RoundRobinNameResolver`, Unknown},
	{"3 #290 OperationCanceledException", `System.OperationCanceledException: The operation was cancelled.`, Unknown},
	{"3 #290 inner TaskCanceledException", ` ---> System.Threading.Tasks.TaskCanceledException: A task was canceled.`, Unknown},
	{"3 #290 DotNettyHttpBackend frame", `   at Gateway.Http.Client.DotNetty.DotNettyHttpBackend.SendRequestAsync(...)`, Unknown},
	{"7 CloudWithChris request entry", `[Info] 2021-06-3T03:25:37.815, isRequestSuccess: False, …`, Unknown},
}

func TestClassifiesEachReferenceLine(t *testing.T) {
	for _, c := range reference {
		t.Run(c.name, func(t *testing.T) {
			l := Classify(entries(c.line), time.Time{})
			if l.State != c.want {
				t.Fatalf("%s\nis %q (%s), want %q", c.line, l.State, l.Evidence, c.want)
			}
			if l.State == Unknown && !l.Seen.IsZero() || l.State != Unknown && !l.Seen.Equal(t0) {
				t.Errorf("seen %v", l.Seen)
			}
			if l.State != Unknown && (l.Event == "" && !strings.HasPrefix(l.Evidence, "No valid") || l.Evidence == "") {
				t.Errorf("no event or evidence: %+v", l)
			}
		})
	}
}

// Sequences: the record's logs as they come, grouped, and the rules'
// edges.
func TestClassifiesSequences(t *testing.T) {
	var (
		syncStarted = `[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider`
		synced      = `[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted], source: ConfigurationRepositoryProvider`
		poll        = `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8157906Z"","eventType":"GettingEventsFromApi","message":"uri: https://dev1-api-managementconfig.apim.dev1.company,com///gateways/self-hosted-gw-eastus/events?$top=100&$skiptoken=000006fe, dataset-id: ou32zolgxrgslmq, request-id: f49b5c66-0032-43da-b572-b7a9dfa39988","source":"ConfigurationApiClient"}`
		noNew       = `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8288362Z"","eventType":"NoNewEvents","source":"EntityEventLoop"}`
		heartbeat   = `{"level":"Verbose","timestamp":"2025-03-10T20:52:05.6216898Z"","eventType":"SendingHeartbeat","message":"Sending heartbeat to 0 instances","source":"UdpHeartbeatSender"}`
		forbidden   = `{"level":"Warning","timestamp":"2026-02-17T09:55:03.2622319Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://gf-api-apimv2-teamiotcore-d-azwe.configuration.azure-api.net/gateways/gf-kubernetes-selfhostedgateway/events?$top=100&$skiptoken=000002ae%22,%22exception%22:%22Gateway.Configuration.Client.ApiException: StatusCode: Forbidden, Cont`
		dns34       = `[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve`
		syncFailed  = `[Error]2022-10-12T02:54:48.369 [ConfigInitialSyncFailed], exception: Gateway.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json`
		// The stand-in's lines in the real formats, as it will write them.
		standinForbidden = `{"level":"Warning","timestamp":"2026-12-01T12:00:00.0000000Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://contoso.configuration.azure-api.net/gateways/contoso-gw/events","exception":"Gateway.Configuration.Client.ApiException: StatusCode: Unauthorized, Content: ","source":"ConfigurationApiClient"}`
		standinBackup    = `[Warn] 2026-12-1T12:00:00.000 [ConfigurationRestoredFromBackup], message: /apim/config, source: FileBackupProvider`
		noBackup         = `[Warn] 2021-06-3T03:25:12.570 [LoadBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider`
	)
	for _, c := range []struct {
		name  string
		lines []string
		want  State
		event string
		seen  int // index of the deciding line; -1: none
	}{
		{"CloudWithChris start to sync", []string{
			`[Info] 2021-06-3T03:25:12.586 [HostBootstrapperStarting]`,
			`[Info] 2021-06-3T03:25:12.931 [ConfigurationUpdated], message: Updated settings: tenant.id, source: ServiceConfigurationSource`,
			`[Info] 2021-06-3T03:25:12.936 [SelfAddressDiscovery], message: Rate limit is running in UDP broadcast mode. Discovering local node addresses to ignore loopback datagrams..., source: P2PRateLimitSignalListenerService`,
			`Now listening on: http://0.0.0.0:8080`, syncStarted, synced,
			`[Info] 2021-06-3T03:25:14.636 [TenantStarted], message: 60b8f459c9afe30001d77d04 00:00:01.5929626`}, Synced, "ConfigInitialSyncCompleted", 5},
		{"start lines, no sync yet", []string{`[Info] 2021-06-3T03:25:12.586 [HostBootstrapperStarting]`, noBackup, syncStarted}, Starting, "ConfigInitialSyncStarted", 2},
		{"#328 polls, peer heartbeat after", []string{poll, noNew, heartbeat}, Synced, "NoNewEvents", 1},
		{"a refusal after a sync is refused", []string{synced, poll, noNew, forbidden}, Refused, "ConfigurationApiV2NotAvailable", 3},
		{"a poll does not clear a refusal", []string{synced, forbidden, poll}, Refused, "ConfigurationApiV2NotAvailable", 1},
		{"an answered poll does", []string{forbidden, poll, noNew}, Synced, "NoNewEvents", 2},
		{"stand-in Unauthorized", []string{syncStarted, poll, standinForbidden}, Refused, "ConfigurationApiV2NotAvailable", 2},
		{"#34 DNS with its frames", []string{dns34,
			`---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve`,
			`at System.Net.Http.ConnectHelper.ConnectAsync(String host, Int32 port, CancellationToken cancellationToken)`,
			`at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean allowHttp2, CancellationToken cancellationToken)`}, Unreachable, "Error", 0},
		{"#164 failed sync keeps the cause before it", []string{syncStarted, dns34, syncFailed,
			"at Gateway.Configuration.FileSystem.FileConfigurationProvider`1.GetAsync(CancellationToken cancellation) in D:\\a\\1\\s\\Pr"}, Unreachable, "Error", 1},
		{"a failed sync alone says no cause", []string{syncStarted, syncFailed}, Unknown, "ConfigInitialSyncFailed", -1},
		{"a failed sync after a sync is not synced", []string{synced, syncFailed}, Unknown, "ConfigInitialSyncFailed", -1},
		{"a start line after a failure is not starting", []string{syncFailed, `[Info] 2021-06-3T03:25:13.041 [HostBootstrapperStarted]`}, Unknown, "ConfigInitialSyncFailed", -1},
		{"stand-in started from backup", []string{noBackup, syncStarted, standinBackup}, FromBackup, "ConfigurationRestoredFromBackup", 2},
		{"from backup, then the endpoint answers", []string{standinBackup, synced}, Synced, "ConfigInitialSyncCompleted", 1},
		{"a poll after a start from backup is no answer", []string{standinBackup, poll}, FromBackup, "ConfigurationRestoredFromBackup", 0},
		{"#193 peer discovery DNS failures are not the link", []string{synced,
			`[33m[Warn] 2023-02-2T04:54:07.276 [DnsDiscoveryFailed], message: Failed to discover external instances`,
			`[DnsDiscoveryFailed], message: Failed to discover external instances on DNS name 000-xx-xx-xx-azure-api-management-gateway-instance-discovery. Details: One or more errors occurred. (Resource temporarily unavailable), source: Neighborhood`,
			`←[31m{"level":"Error","timestamp":"2025-03-31T12:14:04.1092413Z"","eventType":"ErrorResolvingHostname","exception":"System.Net.Internals.SocketExceptionFactory+ExtendedSocketException (00000001, 11): Resource temporarily unavailable\n   at System.Net.Dns.GetHostEntryOrAddressesCore(String hostName, Boolean justAddresses, AddressFamily addressFamily, ValueStopwatch stopwatch)\n`},
			Synced, "ConfigInitialSyncCompleted", 0},
		// The record's request-log lines, indented as the gateway writes the
		// JSON under lastError (the record quotes them trimmed).
		{"#274 backend DNS failure in a request log", []string{synced,
			`[Info] 2024-01-19T07:38:12.752 [GatewayLogs], isRequestSuccess: False, totalTime: 285, category: GatewayLogs, …, responseCode: 500, …, lastError: {`,
			`  "reason": "BackendConnectionFailure",`, `  "message": "Name does not resolve",`, `}`}, Synced, "ConfigInitialSyncCompleted", 0},
		{"#290 backend timeout", []string{synced,
			`System.OperationCanceledException: The operation was cancelled.`,
			` ---> System.Threading.Tasks.TaskCanceledException: A task was canceled.`,
			`   at Gateway.Http.Client.DotNetty.DotNettyHttpBackend.SendRequestAsync(...)`}, Synced, "ConfigInitialSyncCompleted", 0},
		// Not verbatim: the record has only the exception's name (#83) and
		// the title (#367); the lines are built around them.
		{"#83 UnauthorizedAccessException on /apim/config is not refused", []string{synced,
			`[Error] 2022-03-22T10:00:00.000 [Error], exception: System.UnauthorizedAccessException: Access to the path '/apim/config/snapshot.lock.json' is denied.`}, Synced, "ConfigInitialSyncCompleted", 0},
		{"#83 in a failed sync is not refused either", []string{syncStarted,
			`[Error] 2022-03-22T10:00:00.000 [ConfigInitialSyncFailed], exception: System.UnauthorizedAccessException: Access to the path '/apim/config/snapshot.lock.json' is denied.`}, Unknown, "ConfigInitialSyncFailed", -1},
		{"#367 backend TLS is not untrusted", []string{synced,
			`{"level":"Error","timestamp":"2025-11-04T10:00:00.0000000Z","eventType":"GatewayLogs","exception":"System.Security.Authentication.AuthenticationException: The remote certificate was rejected by the provided RemoteCertificateValidationCallback.","source":"DotNettyHttpBackend"}`},
			Synced, "ConfigInitialSyncCompleted", 0},
		{"TLS on the config client is untrusted", []string{syncStarted,
			`{"level":"Error","timestamp":"2026-12-01T12:00:00.0000000Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://contoso.example.com/gateways/g/events","exception":"System.Net.Http.HttpRequestException: The SSL connection could not be established, see inner exception.\n ---> System.Security.Authentication.AuthenticationException: The remote certificate is invalid because of errors in the certificate chain: UntrustedRoot","source":"ConfigurationApiClient"}`},
			Untrusted, "ConfigurationApiV2NotAvailable", 1},
		{"a config client timeout is unreachable", []string{synced,
			`[Error] 2026-12-1T12:00:00.000 [ConfigurationApiV2NotAvailable], message: The configuration V2 API is not reachable, exception: System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured HttpClient.Timeout of 100 seconds elapsing.`},
			Unreachable, "ConfigurationApiV2NotAvailable", 1},
		// Today's stand-in (slog text).
		{"stand-in slog: ready", []string{`time=2026-12-01T12:00:00Z level=INFO msg="configuration loaded; gateway ready" source="configuration service" revision=3 apis=2`}, Synced, "", 0},
		{"stand-in slog: expired token", []string{`time=2026-12-01T12:00:00Z level=INFO msg="configuration loaded; gateway ready"`,
			`time=2026-12-01T12:00:01Z level=WARN msg="the gateway token has expired: API calls now get 200 with an empty body, as users report of the real gateway; regenerate the token"`}, Refused, "", 1},
		{"stand-in slog: from backup", []string{`time=2026-12-01T12:00:00Z level=WARN msg="started from configuration backup" revision=3`}, FromBackup, "", 0},
		{"stand-in slog: unreachable", []string{`{"time":"2026-12-01T12:00:00Z","level":"WARN","msg":"configuration endpoint unreachable","error":"dial tcp: i/o timeout"}`}, Unreachable, "", 0},
		{"stand-in slog: untrusted", []string{`time=2026-12-01T12:00:00Z level=ERROR msg="configuration endpoint's TLS certificate is not trusted: a CA this gateway does not know signed it"`}, Untrusted, "", 0},
		{"nothing", nil, Unknown, "", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := Classify(entries(c.lines...), time.Time{})
			if l.State != c.want || l.Event != c.event {
				t.Fatalf("%q %q (%s), want %q %q", l.State, l.Event, l.Evidence, c.want, c.event)
			}
			seen := time.Time{}
			if c.seen >= 0 {
				seen = t0.Add(time.Duration(c.seen) * time.Second)
			}
			if !l.Seen.Equal(seen) {
				t.Errorf("seen %v, want %v", l.Seen, seen)
			}
		})
	}
}

// now cuts the log: what came after it is not read.
func TestClassifyAsOf(t *testing.T) {
	es := entries(`[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted]`,
		`{"level":"Warning","eventType":"ConfigurationApiV2NotAvailable","exception":"Gateway.Configuration.Client.ApiException: StatusCode: Forbidden"}`)
	if l := Classify(es, t0); l.State != Synced {
		t.Errorf("as of the first entry: %+v", l)
	}
	if l := Classify(es, t0.Add(time.Second)); l.State != Refused || l.Evidence != "ConfigurationApiV2NotAvailable: Gateway.Configuration.Client.ApiException: StatusCode: Forbidden" {
		t.Errorf("as of the second: %+v", l)
	}
}

func TestCauseAndFix(t *testing.T) {
	for _, s := range []State{Synced, Refused, Unreachable, Untrusted, FromBackup, Starting, Unknown} {
		l := Link{State: s}
		if l.Cause() == "" || (s != Synced) != (l.Fix() != "") {
			t.Errorf("%s: cause %q fix %q", s, l.Cause(), l.Fix())
		}
	}
	if f := (Link{State: Refused}).Fix(); !strings.Contains(f, "apimdev token rotate") {
		t.Errorf("refused fix %q", f)
	}
	if c := (Link{State: Refused}).Cause(); !strings.Contains(c, "401/403") {
		t.Errorf("refused cause %q", c)
	}
	if c := (Link{State: Refused, Event: "GatewayStartup"}).Cause(); !strings.Contains(c, "config.service.auth") {
		t.Errorf("start-up auth cause %q", c)
	}
	if f := (Link{State: Untrusted}).Fix(); !strings.Contains(f, "--ca-cert") {
		t.Errorf("untrusted fix %q", f)
	}
	if a, b := (Link{State: Unknown}).Cause(), (Link{State: Unknown, Evidence: "ConfigInitialSyncFailed"}).Cause(); a == b {
		t.Errorf("an unknown with a failure says the same as a silent one: %q", a)
	}
	long := Classify(entries(`[Error] [ConfigInitialSyncFailed], exception: `+strings.Repeat("x", 500)), time.Time{})
	if n := len([]rune(long.Evidence)); n > 200 {
		t.Errorf("evidence of %d characters", n)
	}
}

func TestWorst(t *testing.T) {
	at := func(s State, sec int) Link { return Link{State: s, Seen: t0.Add(time.Duration(sec) * time.Second)} }
	for _, c := range []struct {
		links []Link
		want  Link
	}{
		{nil, Link{State: Unknown}},
		{[]Link{at(Refused, 1), at(Refused, 3), at(Refused, 2)}, at(Refused, 3)},
		{[]Link{at(Unreachable, 1), at(Unreachable, 2)}, at(Unreachable, 2)},
		{[]Link{at(Synced, 1), at(Untrusted, 2), at(Unreachable, 3)}, at(Untrusted, 2)},
		{[]Link{{State: Unknown}, at(Synced, 1)}, at(Synced, 1)},
		{[]Link{at(Starting, 1), at(FromBackup, 1)}, at(FromBackup, 1)},
	} {
		if got := Worst(c.links); got.State != c.want.State || !got.Seen.Equal(c.want.Seen) {
			t.Errorf("Worst(%v) = %v, want %v", c.links, got, c.want)
		}
	}
}

// A start from the backup is an event of its own whose name says Backup and
// Restored or FromBackup; the backup's other events are not one.
func TestBackupEventNames(t *testing.T) {
	for name, want := range map[string]State{
		"ConfigurationRestoredFromBackup": FromBackup, "BackupRestored": FromBackup, "StartedFromBackup": FromBackup, "ConfigBackupRestored": FromBackup,
		"LocalBackupLocationNotFound": Starting, "BackupRestoreFailed": Unknown, "EventSnapshotRestored": Unknown, "BackupWritten": Unknown,
	} {
		if l := Classify(entries(`[Info] 2026-12-1T12:00:00.000 [`+name+`], message: /apim/config`), time.Time{}); l.State != want {
			t.Errorf("%s: %q, want %q", name, l.State, want)
		}
	}
}
