package podlogs

import (
	"strings"
	"testing"
)

// isLine: the message is the line itself (trimmed), as for any line the
// formats do not tag.
const isLine = "\x00line"

type want struct{ level, event, source, message, exception string }

// matches compares a field; a want with "…" matches any text there.
func matches(got, want string) bool {
	parts := strings.Split(want, "…")
	if len(parts) == 1 {
		return got == want
	}
	if !strings.HasPrefix(got, parts[0]) || !strings.HasSuffix(got, parts[len(parts)-1]) {
		return false
	}
	rest := got[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return len(rest) >= len(parts[len(parts)-1])
}

// Every line of a record of the real gateway's logs collected from public
// sources (issues of Azure/api-management-self-hosted-gateway, Microsoft's
// docs, a blog), verbatim, named by the record's row, source and event;
// read by the text or the JSON reader.
var reference = []struct {
	name, line string
	want       want
}{
	{"1.1 CloudWithChris untagged", `WARNING: ca-certificates.crt does not contain exactly one certificate or CRL: skipping`, want{"", "", "", isLine, ""}},
	{"1.2 CloudWithChris untagged", `version: 1.3.0.0`, want{"", "", "", isLine, ""}},
	{"1.3 CloudWithChris untagged", `commit: a1434b5a6f41a3b878cbb27ec4d7b69b5c45b5af`, want{"", "", "", isLine, ""}},
	{"1.4 CloudWithChris HostBootstrapperStarting", `[Info] 2021-06-3T03:25:12.586 [HostBootstrapperStarting]`, want{"info", "HostBootstrapperStarting", "", "", ""}},
	{"1.5 CloudWithChris LoadingConfiguration", `[Info] 2021-06-3T03:25:12.613 [LoadingConfiguration], message: https://rb-azure-apim.management.azure-api.net/subscriptions/[…]/resourceGroups/rb-aks-rg/providers/Microsoft.ApiManagement/service/rb-azure-apim/gateways/getConfiguration?api-version=2018-06-01-preview, source: ServiceConfigurationSource`, want{"info", "LoadingConfiguration", "ServiceConfigurationSource", "https://rb-azure-apim.management.azure-api.net/subscriptions/[…]/resourceGroups/rb-aks-rg/providers/Microsoft.ApiManagement/service/rb-azure-apim/gateways/getConfiguration?api-version=2018-06-01-preview", ""}},
	{"1.6 CloudWithChris ConfigurationUpdated", `[Info] 2021-06-3T03:25:12.931 [ConfigurationUpdated], message: Updated settings: tenant.id, tenant.name, config.enc, config.enc.keys.primary, config.enc.keys.secondary, config.cert.privatekey.password, deployment.dataset.id, logs.applicationinsights.endpoint, policy.qouta.sync.table.connection, events.snapshot.initial.connection, events.snapshot.private.master.connection, events.table.connection, inspector.container.connection, deployment.instance.region, deployment.instance.gateway-id, deployment.id, deployment.name, config.mode, source: ServiceConfigurationSource`, want{"info", "ConfigurationUpdated", "ServiceConfigurationSource", "Updated settings: tenant.id, tenant.name, …, deployment.name, config.mode", ""}},
	{"1.7 CloudWithChris ComponentStarting", `[Info] 2021-06-3T03:25:12.933 [ComponentStarting], message: ExternalConfigurationHeartbeat`, want{"info", "ComponentStarting", "", "ExternalConfigurationHeartbeat", ""}},
	{"1.8 CloudWithChris ComponentStarted", `[Info] 2021-06-3T03:25:12.933 [ComponentStarted], message: ExternalConfigurationHeartbeat`, want{"info", "ComponentStarted", "", "ExternalConfigurationHeartbeat", ""}},
	{"1.9 CloudWithChris ComponentStarting", `[Info] 2021-06-3T03:25:12.933 [ComponentStarting], message: ExternalConfigurationMonitor`, want{"info", "ComponentStarting", "", "ExternalConfigurationMonitor", ""}},
	{"1.10 CloudWithChris ComponentStarted", `[Info] 2021-06-3T03:25:12.933 [ComponentStarted], message: ExternalConfigurationMonitor`, want{"info", "ComponentStarted", "", "ExternalConfigurationMonitor", ""}},
	{"1.11 CloudWithChris SelfAddressDiscovery", `[Info] 2021-06-3T03:25:12.936 [SelfAddressDiscovery], message: Rate limit is running in UDP broadcast mode. Discovering local node addresses to ignore loopback datagrams..., source: P2PRateLimitSignalListenerService`, want{"info", "SelfAddressDiscovery", "P2PRateLimitSignalListenerService", "Rate limit is running in UDP broadcast mode. Discovering local node addresses to ignore loopback datagrams...", ""}},
	{"1.12 CloudWithChris NeighborhoodChangeDetected", `[Info] 2021-06-3T03:25:12.938 [NeighborhoodChangeDetected], message: [] --> [255.255.255.255: 255.255.255.255], source: UdpHeartbeatSender`, want{"info", "NeighborhoodChangeDetected", "UdpHeartbeatSender", "[] --> [255.255.255.255: 255.255.255.255]", ""}},
	{"1.13 CloudWithChris untagged", `Now listening on: http://0.0.0.0:8080`, want{"", "", "", isLine, ""}},
	{"1.14 CloudWithChris untagged", `Now listening on: https://0.0.0.0:8081`, want{"", "", "", isLine, ""}},
	{"1.15 CloudWithChris HostBootstrapperStarted", `[Info] 2021-06-3T03:25:13.041 [HostBootstrapperStarted]`, want{"info", "HostBootstrapperStarted", "", "", ""}},
	{"1.16 CloudWithChris TenantStarting", `[Info] 2021-06-3T03:25:13.138 [TenantStarting], message: 60b8f459c9afe30001d77d04`, want{"info", "TenantStarting", "", "60b8f459c9afe30001d77d04", ""}},
	{"1.17 CloudWithChris KubernetesIngressModeDisabled", `[Info] 2021-06-3T03:25:13.345 [KubernetesIngressModeDisabled], source: KubernetesConfigurationRepositoryProvider`, want{"info", "KubernetesIngressModeDisabled", "KubernetesConfigurationRepositoryProvider", "", ""}},
	{"1.18 CloudWithChris ConfigStarted", `[Info] 2021-06-3T03:25:13.686 [ConfigStarted], source: CompositeConfigurationRepositoryProvider`, want{"info", "ConfigStarted", "CompositeConfigurationRepositoryProvider", "", ""}},
	{"1.19 CloudWithChris ConfigStarted", `[Info] 2021-06-3T03:25:13.686 [ConfigStarted], message: Connected service is enabled. 'config.service.endpoint' is set., source: CompositeConfigurationRepositoryProvider`, want{"info", "ConfigStarted", "CompositeConfigurationRepositoryProvider", "Connected service is enabled. 'config.service.endpoint' is set.", ""}},
	{"1.20 CloudWithChris ConfigInitialSyncStarted", `[Info] 2021-06-3T03:25:13.690 [ConfigInitialSyncStarted], source: ConfigurationRepositoryProvider`, want{"info", "ConfigInitialSyncStarted", "ConfigurationRepositoryProvider", "", ""}},
	{"1.21 CloudWithChris EventSnapshotElected", `[Info] 2021-06-3T03:25:14.043 [EventSnapshotElected], message: provider: storage, uri: https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip, rev: 18, source: events.snapshot`, want{"info", "EventSnapshotElected", "events.snapshot", "provider: storage, uri: https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip, rev: 18", ""}},
	{"1.22 CloudWithChris ConfigurationLoaded", `[Info] 2021-06-3T03:25:14.099 [ConfigurationLoaded], message: https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip, source: events.snapshot.storage.private`, want{"info", "ConfigurationLoaded", "events.snapshot.storage.private", "https://apimstbeacnpvcizrrfm4ctb.blob.core.windows.net/gatewaysnapshots66q8h6gxqilk8i4/snapshot-2019-10-11.gwhost_0.json.gzip", ""}},
	{"1.23 CloudWithChris OperationRouteTableRebuildStarted", `[Info] 2021-06-3T03:25:14.368 [OperationRouteTableRebuildStarted], message: echo-api;rev=1, source: ApiRouter`, want{"info", "OperationRouteTableRebuildStarted", "ApiRouter", "echo-api;rev=1", ""}},
	{"1.24 CloudWithChris OperationRouteTableRebuildCompleted", `[Info] 2021-06-3T03:25:14.398 [OperationRouteTableRebuildCompleted], message: echo-api;rev=1, source: ApiRouter`, want{"info", "OperationRouteTableRebuildCompleted", "ApiRouter", "echo-api;rev=1", ""}},
	{"1.25 CloudWithChris EventSnapshotRestored", `[Info] 2021-06-3T03:25:14.420 [EventSnapshotRestored], message: revision: 00000012, datasetId: 66q8h6gxqilk8i4, source: ConfigurationRepositoryProvider`, want{"info", "EventSnapshotRestored", "ConfigurationRepositoryProvider", "revision: 00000012, datasetId: 66q8h6gxqilk8i4", ""}},
	{"1.26 CloudWithChris EventsSuccessfullyRestored", `[Info] 2021-06-3T03:25:14.633 [EventsSuccessfullyRestored], source: ConfigurationRepositoryProvider`, want{"info", "EventsSuccessfullyRestored", "ConfigurationRepositoryProvider", "", ""}},
	{"1.27 CloudWithChris ConfigInitialSyncCompleted", `[Info] 2021-06-3T03:25:14.634 [ConfigInitialSyncCompleted], source: ConfigurationRepositoryProvider`, want{"info", "ConfigInitialSyncCompleted", "ConfigurationRepositoryProvider", "", ""}},
	{"1.28 CloudWithChris TenantStarted", `[Info] 2021-06-3T03:25:14.636 [TenantStarted], message: 60b8f459c9afe30001d77d04 00:00:01.5929626`, want{"info", "TenantStarted", "", "60b8f459c9afe30001d77d04 00:00:01.5929626", ""}},
	{"1.29 #328 GettingEventsFromApi", `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8157906Z"","eventType":"GettingEventsFromApi","message":"uri: https://dev1-api-managementconfig.apim.dev1.company,com///gateways/self-hosted-gw-eastus/events?$top=100&$skiptoken=000006fe, dataset-id: ou32zolgxrgslmq, request-id: f49b5c66-0032-43da-b572-b7a9dfa39988","source":"ConfigurationApiClient"}`, want{"debug", "GettingEventsFromApi", "ConfigurationApiClient", "uri: https://dev1-api-managementconfig.apim.dev1.company,com///gateways/self-hosted-gw-eastus/events?$top=100&$skiptoken=000006fe, dataset-id: ou32zolgxrgslmq, request-id: f49b5c66-0032-43da-b572-b7a9dfa39988", ""}},
	{"1.30 #328 NoNewEvents", `{"level":"Verbose","timestamp":"2025-03-10T20:51:54.8288362Z"","eventType":"NoNewEvents","source":"EntityEventLoop"}`, want{"debug", "NoNewEvents", "EntityEventLoop", "", ""}},
	{"1.31 #328 SendingHeartbeat", `{"level":"Verbose","timestamp":"2025-03-10T20:52:05.6216898Z"","eventType":"SendingHeartbeat","message":"Sending heartbeat to 0 instances","source":"UdpHeartbeatSender"}`, want{"debug", "SendingHeartbeat", "UdpHeartbeatSender", "Sending heartbeat to 0 instances", ""}},
	{"1.32 #328 HeartbeatSent", `{"level":"Verbose","timestamp":"2025-03-10T20:52:05.6217020Z"","eventType":"HeartbeatSent","source":"UdpHeartbeatSender"}`, want{"debug", "HeartbeatSent", "UdpHeartbeatSender", "", ""}},
	{"1.33 #328 RequestReceived", `{"level":"Verbose","timestamp":"2025-03-10T21:03:31.2426620Z"","eventType":"RequestReceived","apiId":"open-api","operationId":"return-headers-operation","subscriptionId":"debug-subscription","tags":0,"httpMethod":"GET","source":"SingleThreadedBackendChannelPool","serviceName":"apim-gateway","message":"protocol=Http1","transportError":0,"httpError":0}`, want{"debug", "RequestReceived", "SingleThreadedBackendChannelPool", "protocol=Http1", ""}},
	{"1.34 #328 DebugContextNotRequested", `{"level":"Verbose","timestamp":"2025-03-10T20:48:56.1551699Z"","eventType":"DebugContextNotRequested","tags":0,"httpMethod":"GET","source":"DebugContextProvider","serviceName":"apim-gateway","transportError":0,"httpError":0}`, want{"debug", "DebugContextNotRequested", "DebugContextProvider", "", ""}},
	{"1.35 SHGLogViewer HostBootstrapperStarting (the C# comment's // dropped; \u001b is ESC)", "\u001b[37m[Info] 2022-05-12T06:16:58.790 [HostBootstrapperStarting]\u001b[0m", want{"info", "HostBootstrapperStarting", "", "", ""}},
	{"1.36 SHGLogViewer MyAddresses (the C# comment's // dropped)", `[37m[Info] 2022 - 05 - 12T06: 16:58.803[MyAddresses], message: 127.0.0.1, 192.168.0.2, source: P2PRateLimitSignalListenerService, correlationId: 6cf0f128 - 408b - 40b8 - 934a - 21145dd4b333`, want{"info", "MyAddresses", "P2PRateLimitSignalListenerService", "127.0.0.1, 192.168.0.2", ""}},
	{"2.1 PR#371 ConfigurationApiV2NotAvailable", `{"level":"Warning","timestamp":"2026-02-17T09:55:03.2622319Z","eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://gf-api-apimv2-teamiotcore-d-azwe.configuration.azure-api.net/gateways/gf-kubernetes-selfhostedgateway/events?$top=100&$skiptoken=000002ae%22,%22exception%22:%22Gateway.Configuration.Client.ApiException: StatusCode: Forbidden, Cont`, want{"warn", "ConfigurationApiV2NotAvailable", "", "The configuration V2 API is not reachable on https://gf-api-apimv2-teamiotcore-d-azwe.configuration.azure-api.net/…StatusCode: Forbidden, Cont", ""}},
	{"2.2 #269 GatewayStartup", ` [Error] [GatewayStartup], message: No valid authentication was configured for the configuration API. The sup`, want{"error", "GatewayStartup", "", "No valid authentication was configured for the configuration API. The sup", ""}},
	{"2.3 #37 Error", `{"level":"Error","timestamp":"2021-10-25T05:30:52.6744551Z","eventType":"Error","exception":"System.Net.Http.HttpRequestException: Response status code does not indicate success: 400 (Bad Request).\n   at System.Net.Http.HttpResponseMessage.EnsureSuccessStatusCode()\n   at Gateway.Host.AspNetCore.ExternalConfiguration.ServiceConfigurationSource.HandleConfigurationError(HttpResponseMessage response) in D:\\a\\1\\s\\Proxy\\Gateway.Host.AspNetCore\\ExternalConfiguration\\ServiceConfigurationSource.cs:line 212\n   at Gateway.Host.AspNetCore.ExternalConfiguration.ServiceConfigurationSource.<>c__DisplayClass19_0.<<UpdateConfiguration>b__1>d.MoveNext() in D:\\a\\1\\s\\Proxy\\Gateway.Host.AspNetCore\\ExternalConfiguration\\ServiceConfigurationSource.cs:line 179\n--- End of stack trace from previous location where exception was thrown ---\n   at Polly.Retry.AsyncRetryEngine.ImplementationAsync[TResult](Func3 action, Context context, CancellationToken cancellationToken, ExceptionPredicates shouldRetryExceptionPredicates, ResultPredicates1 shouldRetryResultPredicates, Func5 onRetryAsync, Int32 permittedRetryCount, IEnumerable1 sleepDurationsEnumerable, Func4 sleepDurationProvider, Boolean continueOnCapturedContext)","source":"ServiceConfigurationSource"}`, want{"error", "Error", "ServiceConfigurationSource", "", "System.Net.Http.HttpRequestException: Response status code does not indicate success: 400 (Bad Request).\n   at System.Net.Http.HttpResponseMessage.EnsureSuccessStatusCode()\n…Boolean continueOnCapturedContext)"}},
	{"3.1 #34 Error", `[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve`, want{"error", "Error", "", "", "System.Net.Http.HttpRequestException: Name does not resolve"}},
	{"3.2 #34 untagged", `---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve`, want{"", "", "", isLine, ""}},
	{"3.3 #34 untagged", `at System.Net.Http.ConnectHelper.ConnectAsync(String host, Int32 port, CancellationToken cancellationToken)`, want{"", "", "", isLine, ""}},
	{"3.4 #34 untagged", `at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean allowHttp2, CancellationToken cancellationToken)`, want{"", "", "", isLine, ""}},
	{"3.5 #164 untagged", `   at System.Net.Http.HttpConnectionPool.ConnectAsync(HttpRequestMessage request, Boolean async, CancellationToken cancellationToken)`, want{"", "", "", isLine, ""}},
	{"3.6 #164 untagged", `   at Gateway.Configuration.Client.ConfigurationApiClient.SendRequestToApiAsync(Ht`, want{"", "", "", isLine, ""}},
	{"3.7 #339 ErrorResolvingHostname", `←[31m{"level":"Error","timestamp":"2025-03-31T12:14:04.1092413Z"","eventType":"ErrorResolvingHostname","exception":"System.Net.Internals.SocketExceptionFactory+ExtendedSocketException (00000001, 11): Resource temporarily unavailable\n   at System.Net.Dns.GetHostEntryOrAddressesCore(String hostName, Boolean justAddresses, AddressFamily addressFamily, ValueStopwatch stopwatch)\n`, want{"error", "ErrorResolvingHostname", "", "", "System.Net.Internals.SocketExceptionFactory+ExtendedSocketException (00000001, 11): Resource temporarily unavailable\n   at System.Net.Dns.GetHostEntryOrAddressesCore(String hostName, Boolean justAddresses, AddressFamily addressFamily, ValueStopwatch stopwatch)\n"}},
	{"3.8 #193 DnsDiscoveryFailed", `[DnsDiscoveryFailed], message: Failed to discover external instances on DNS name 000-xx-xx-xx-azure-api-management-gateway-instance-discovery. Details: One or more errors occurred. (Resource temporarily unavailable), source: Neighborhood`, want{"", "DnsDiscoveryFailed", "Neighborhood", "Failed to discover external instances on DNS name 000-xx-xx-xx-azure-api-management-gateway-instance-discovery. Details: One or more errors occurred. (Resource temporarily unavailable)", ""}},
	{"3.9 #193 ErrorResolvingHostname", `[ErrorResolvingHostname]`, want{"", "ErrorResolvingHostname", "", "", ""}},
	{"3.10 #193 DnsDiscoveryFailed", `[33m[Warn] 2023-02-2T04:54:07.276 [DnsDiscoveryFailed], message: Failed to discover external instances`, want{"warn", "DnsDiscoveryFailed", "", "Failed to discover external instances", ""}},
	{"5.1 azure-docs#58769 LocalBackupLocationNotFound", `[LocalBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider`, want{"", "LocalBackupLocationNotFound", "BackupMetadataProvider", "/apim/config", ""}},
	{"5.2 CloudWithChris LoadBackupLocationNotFound", `[Warn] 2021-06-3T03:25:12.570 [LoadBackupLocationNotFound], message: /apim/config, source: BackupMetadataProvider`, want{"warn", "LoadBackupLocationNotFound", "BackupMetadataProvider", "/apim/config", ""}},
	{"5.3 CloudWithChris LoadBackupLocationNotFound", `[Warn] 2021-06-3T03:25:13.376 [LoadBackupLocationNotFound], message: /apim/config, source: FileBackupProvider`, want{"warn", "LoadBackupLocationNotFound", "FileBackupProvider", "/apim/config", ""}},
	{"5.4 #164 ConfigInitialSyncFailed", `[Error]2022-10-12T02:54:48.369 [ConfigInitialSyncFailed], exception: Gateway.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json`, want{"error", "ConfigInitialSyncFailed", "", "", "Gateway.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json"}},
	{"5.5 #164 untagged", "at Gateway.Configuration.FileSystem.FileConfigurationProvider`1.GetAsync(CancellationToken cancellation) in D:\\a\\1\\s\\Pr", want{"", "", "", isLine, ""}},
	{"5.6 #34 Error", `[Error]2021-07-8T01:46:52.274 [Error], exception: System.Net.Http.HttpRequestException: Name does not resolve`, want{"error", "Error", "", "", "System.Net.Http.HttpRequestException: Name does not resolve"}},
	// Traps quoted in the record's prose: backend request logs (#274),
	// a backend timeout (#290), a request entry (section 7).
	{"3 #274 GatewayLogs", `[Info] 2024-01-19T07:38:12.752 [GatewayLogs], isRequestSuccess: False, totalTime: 285, category: GatewayLogs, …, responseCode: 500, …, lastError: {`, want{"info", "GatewayLogs", "", "isRequestSuccess: False, totalTime: 285, category: GatewayLogs, …, responseCode: 500, …, lastError: {", ""}},
	{"3 #274 reason", `"reason": "BackendConnectionFailure",`, want{"", "", "", isLine, ""}},
	{"3 #274 message", `"message": "Name does not resolve",`, want{"", "", "", isLine, ""}},
	{"3 #274 DnsResolutionStarted", `[Info] 2024-01-19T07:39:54.667 [DnsResolutionStarted], message: unused, source: RoundRobinNameResolver`, want{"info", "DnsResolutionStarted", "RoundRobinNameResolver", "unused", ""}},
	{"3 #290 OperationCanceledException", `System.OperationCanceledException: The operation was cancelled.`, want{"", "", "", isLine, ""}},
	{"3 #290 inner TaskCanceledException", ` ---> System.Threading.Tasks.TaskCanceledException: A task was canceled.`, want{"", "", "", isLine, ""}},
	{"3 #290 DotNettyHttpBackend frame", `   at Gateway.Http.Client.DotNetty.DotNettyHttpBackend.SendRequestAsync(...)`, want{"", "", "", isLine, ""}},
	{"7 CloudWithChris request entry", `[Info] 2021-06-3T03:25:37.815, isRequestSuccess: False, …`, want{"info", "", "", "isRequestSuccess: False, …", ""}},
}

func TestReadsTheReferenceLines(t *testing.T) {
	for _, c := range reference {
		t.Run(c.name, func(t *testing.T) {
			e := Read(c.line)
			w := c.want
			if w.message == isLine {
				w.message = strings.TrimSpace(c.line)
			}
			got := want{e.Level, e.Event, e.Source, e.Message, e.Exception}
			if got.level != w.level || got.event != w.event || got.source != w.source || !matches(got.message, w.message) || !matches(got.exception, w.exception) {
				t.Errorf("read\n%s\n got %#v\nwant %#v", c.line, got, w)
			}
			if strings.ContainsAny(e.Message+e.Exception+e.Event+e.Source, "\x1b←") {
				t.Errorf("colour escape left in %+v", e)
			}
		})
	}
}
