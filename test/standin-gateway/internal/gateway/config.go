package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

// sourceBackup is where a configuration installed from the backup came from.
const sourceBackup = "backup"

// maxConfigBytes bounds what the gateway reads from the config service.
const maxConfigBytes = 4 << 20

var (
	// errRefused is a 401/403 from the configuration endpoint.
	errRefused = errors.New("configuration endpoint refused the token")
	// errUnreachable wraps failures where the endpoint could not be asked at all
	// (or answered that it is unavailable): the cases a backup is for.
	errUnreachable = errors.New("configuration endpoint unreachable")
)

// statusError is an HTTP answer that is not 200.
type statusError struct{ code int }

func (e statusError) Error() string {
	return "it answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// dotnetName is the status code's name in .NET's HttpStatusCode (Forbidden,
// ServiceUnavailable), which the real gateway's ApiException prints.
func (e statusError) dotnetName() string {
	if t := http.StatusText(e.code); t != "" {
		return strings.NewReplacer(" ", "", "-", "").Replace(t)
	}
	return strconv.Itoa(e.code)
}

// poll fetches configuration at once, then every PollInterval, until ctx is done.
func (g *Gateway) poll(ctx context.Context) {
	g.log.Info("", standinlog.Event(standinlog.EvSyncStarted), standinlog.Source(standinlog.SrcRepository))
	ticker := time.NewTicker(g.opts.PollInterval)
	defer ticker.Stop()
	for {
		g.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// refresh runs one fetch and acts on its outcome.
func (g *Gateway) refresh(ctx context.Context) {
	cfg, err := g.fetch(ctx)
	switch {
	case err == nil:
		changed := g.install(cfg, "configuration service")
		g.writeBackup(cfg)
		if g.lastOutcome != "" && g.lastOutcome != "ok" {
			g.log.Info("configuration endpoint answering again", standinlog.Event(standinlog.EvAPIAvailableAgain), standinlog.Source(standinlog.SrcAPIClient))
		}
		if changed {
			g.lastOutcome = "ok"
			return
		}
		g.outcome("ok", slog.LevelDebug, "", standinlog.Event(standinlog.EvNoNewEvents), standinlog.Source(standinlog.SrcEventLoop),
			"revision", cfg.Revision)
	case errors.Is(err, errRefused):
		if g.opts.Entra != nil {
			g.access = "" // ask Entra ID again next time
		}
		// The real gateway calls a 401/403 "not reachable" (record 2.1); the
		// exception's status code says what happened.
		var se statusError
		errors.As(err, &se)
		// Refused before any configuration: the host runs on without one,
		// as users report of the real gateway (record 6, #287).
		g.refusedBare.Store(g.state.Load() == nil)
		g.outcome("refused", slog.LevelWarn, "The configuration V2 API is not reachable on "+g.configURL.String(),
			standinlog.Event(standinlog.EvAPIv2NotAvailable), standinlog.Source(standinlog.SrcAPIClient),
			standinlog.Exception("Gateway.Configuration.Client.ApiException: StatusCode: "+se.dotnetName()),
			"error", err.Error(), "ready", g.state.Load() != nil)
	case errors.Is(err, errEntraRefused):
		g.outcome("entra-refused", slog.LevelError, errEntraRefused.Error()+"; no configuration can be fetched until the client secret, client id or tenant id is fixed",
			standinlog.Event(standinlog.EvEntraRefused), standinlog.Source(standinlog.SrcAPIClient),
			"error", err.Error(), "ready", g.state.Load() != nil)
	case errors.As(err, new(x509.UnknownAuthorityError)):
		// As the real gateway's RemoteCertificateChainErrors/UntrustedRoot:
		// a CA it does not know signed the endpoint's certificate. The record
		// has no line for this; the exception is .NET's usual wording.
		g.outcome("untrusted", slog.LevelError, "configuration endpoint's TLS certificate is not trusted: a CA this gateway does not know signed it",
			standinlog.Event(standinlog.EvError), standinlog.Source(standinlog.SrcAPIClient),
			standinlog.Exception("System.Net.Http.HttpRequestException: The SSL connection could not be established, see inner exception.\n"+
				" ---> System.Security.Authentication.AuthenticationException: The remote certificate is invalid because of errors in the certificate chain: UntrustedRoot"),
			"error", err.Error(), "keepingLastConfiguration", g.state.Load() != nil)
		if g.state.Load() == nil {
			g.loadBackup()
		}
	case errors.Is(err, errUnreachable):
		g.outcome("unreachable", slog.LevelError, "configuration endpoint unreachable",
			standinlog.Event(standinlog.EvError), standinlog.Source(standinlog.SrcAPIClient),
			standinlog.Exception(g.unreachableException(err)),
			"error", err.Error(), "keepingLastConfiguration", g.state.Load() != nil)
		if g.state.Load() == nil {
			g.loadBackup()
		}
	default:
		g.outcome("invalid", slog.LevelError, "configuration endpoint sent an unusable answer; keeping the last configuration",
			standinlog.Event(standinlog.EvInvalidAnswer), standinlog.Source(standinlog.SrcAPIClient),
			"error", err.Error())
	}
}

// unreachableException words a failed call as .NET does. Only the DNS wording
// is in the record (3.1, 3.2: musl's "Name does not resolve"; 3.7: "Resource
// temporarily unavailable"); the refused, timeout and 5xx wordings are .NET's
// usual ones, not seen in a real gateway's log.
func (g *Gateway) unreachableException(err error) string {
	var dns *net.DNSError
	var se statusError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "System.Net.Http.HttpRequestException: Name does not resolve\n ---> System.Net.Sockets.SocketException (0xFFFDFFFF): Name does not resolve"
	case errors.As(err, &dns):
		return "System.Net.Http.HttpRequestException: Resource temporarily unavailable\n ---> System.Net.Sockets.SocketException (11): Resource temporarily unavailable"
	case connRefused(err):
		return "System.Net.Http.HttpRequestException: Connection refused\n ---> System.Net.Sockets.SocketException (111): Connection refused"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured HttpClient.Timeout of " +
			strconv.FormatFloat(g.opts.FetchTimeout.Seconds(), 'f', -1, 64) + " seconds elapsing."
	case errors.As(err, &se):
		return "Gateway.Configuration.Client.ApiException: StatusCode: " + se.dotnetName()
	}
	return "System.Net.Http.HttpRequestException: " + strings.TrimPrefix(err.Error(), errUnreachable.Error()+": ")
}

// connRefused: ECONNREFUSED, or Windows' WSAECONNREFUSED (10061), which Go
// does not map to it.
func connRefused(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == 10061)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// outcome logs msg at level when the outcome changes, and at debug while it
// repeats, so a gateway that cannot reach Azure does not log every 10 seconds.
func (g *Gateway) outcome(kind string, level slog.Level, msg string, args ...any) {
	if kind == g.lastOutcome {
		level = slog.LevelDebug
	}
	g.lastOutcome = kind
	g.log.Log(context.Background(), level, msg, args...)
}

// fetch asks the config service for the configuration. Errors never contain the
// token: it travels in a header, which neither net/http nor we put in errors.
func (g *Gateway) fetch(ctx context.Context) (apimconfig.Configuration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.configURL.String(), nil)
	if err != nil {
		return apimconfig.Configuration{}, err
	}
	if g.opts.Entra != nil {
		at, err := g.accessToken(ctx)
		if err != nil {
			return apimconfig.Configuration{}, err
		}
		req.Header.Set("Authorization", "Bearer "+at)
	} else {
		req.Header.Set("Authorization", token.Prefix+token.StripPrefix(g.opts.Auth))
	}
	req.Header.Set("Accept", "application/json")
	g.log.Debug("uri: "+g.configURL.String(), standinlog.Event(standinlog.EvGettingEvents), standinlog.Source(standinlog.SrcAPIClient))
	req.Header.Set("User-Agent", "apimdev-standin-gateway/"+g.opts.Version)
	resp, err := g.client.Do(req)
	if err != nil {
		return apimconfig.Configuration{}, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return apimconfig.Configuration{}, fmt.Errorf("%w: %w", errRefused, statusError{resp.StatusCode})
	case resp.StatusCode >= 500:
		return apimconfig.Configuration{}, fmt.Errorf("%w: %w", errUnreachable, statusError{resp.StatusCode})
	case resp.StatusCode != http.StatusOK:
		return apimconfig.Configuration{}, fmt.Errorf("configuration endpoint answered %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigBytes))
	if err != nil {
		return apimconfig.Configuration{}, fmt.Errorf("%w: reading the answer: %w", errUnreachable, err)
	}
	return apimconfig.Decode(data)
}

// install makes cfg the live configuration, and says whether it changed.
// The first configuration from the endpoint completes the initial sync, even
// after a start from the backup; a start from the backup does not.
func (g *Gateway) install(cfg apimconfig.Configuration, source string) bool {
	prev := g.state.Swap(&loaded{cfg: cfg, source: source})
	changed := true
	switch {
	case source == sourceBackup && prev == nil:
		// The record has no line for a start from the backup: this event is
		// the stand-in's own, and so is its message, which tests look for.
		g.log.Warn("started from configuration backup; gateway ready", standinlog.Event(standinlog.EvStartedFromBackup), standinlog.Source(standinlog.SrcFileBackup),
			"revision", cfg.Revision, "apis", len(cfg.APIs))
	case source != sourceBackup && !g.synced:
		g.synced = true
		msg := "configuration loaded; gateway ready"
		if prev != nil {
			msg = "configuration loaded from the configuration endpoint, replacing the backup's"
		}
		g.log.Info(msg, standinlog.Event(standinlog.EvSyncCompleted), standinlog.Source(standinlog.SrcRepository),
			"from", source, "revision", cfg.Revision, "apis", len(cfg.APIs))
	case prev != nil && (prev.cfg.Revision != cfg.Revision || prev.source != source):
		g.log.Info("configuration changed", standinlog.Event(standinlog.EvConfigurationChanged), standinlog.Source(standinlog.SrcRepository),
			"from", source, "revision", cfg.Revision, "apis", len(cfg.APIs))
	default:
		changed = false
	}
	g.checkExpiry()
	return changed
}

// checkBackupDir says at start whether backup is on, as the real gateway's
// behaviour depends on a volume being mounted there.
func (g *Gateway) checkBackupDir() {
	dir := g.opts.BackupDir
	if dir == "" {
		g.log.Warn("configuration backup disabled: STANDIN_BACKUP_DIR is empty",
			standinlog.Event(standinlog.EvBackupLocationNotFound), standinlog.Source(standinlog.SrcBackupMetadata))
		return
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		g.log.Warn(dir, standinlog.Event(standinlog.EvBackupLocationNotFound), standinlog.Source(standinlog.SrcBackupMetadata))
		return
	}
	f, err := os.CreateTemp(dir, ".standin-write-check-*")
	if err != nil {
		// The real gateway fails with UnauthorizedAccessException here when the
		// volume is not writable by GID 1001 (no fsGroup).
		g.log.Warn("configuration backup directory is not writable; backup will fail",
			standinlog.Event(standinlog.EvBackupNotWritable), standinlog.Source(standinlog.SrcFileBackup), "dir", dir, "error", err.Error())
		return
	}
	f.Close()
	os.Remove(f.Name())
	g.log.Info("configuration backup enabled", standinlog.Event(standinlog.EvBackupEnabled), standinlog.Source(standinlog.SrcFileBackup), "dir", dir)
}

// writeBackup replaces the backup file atomically: write a temporary file in
// the same directory, sync, rename. A reader never sees half a file.
func (g *Gateway) writeBackup(cfg apimconfig.Configuration) {
	if g.opts.BackupDir == "" {
		return
	}
	err := writeFileAtomic(filepath.Join(g.opts.BackupDir, BackupFile), cfg)
	switch {
	case err != nil && err.Error() != g.lastBackupErr:
		if !errors.Is(err, fs.ErrNotExist) {
			g.log.Warn("configuration backup failed", standinlog.Event(standinlog.EvBackupFailed), standinlog.Source(standinlog.SrcFileBackup), "error", err.Error())
		}
		g.lastBackupErr = err.Error()
	case err == nil:
		if g.lastBackupErr != "" {
			g.log.Info("configuration backup written again", standinlog.Event(standinlog.EvBackupWritten), standinlog.Source(standinlog.SrcFileBackup))
		}
		g.lastBackupErr = ""
		g.log.Debug("configuration backup written", standinlog.Event(standinlog.EvBackupWritten), standinlog.Source(standinlog.SrcFileBackup), "revision", cfg.Revision)
	}
}

func writeFileAtomic(path string, cfg apimconfig.Configuration) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".standin-configuration-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // No-op after a successful rename.
	// Group-readable and writable: replicas sharing a ReadWriteMany volume meet
	// there through fsGroup 1001, not through their user id.
	if err := tmp.Chmod(0o660); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadBackup installs the backup when the config service cannot be reached.
func (g *Gateway) loadBackup() {
	if g.opts.BackupDir == "" {
		return
	}
	path := filepath.Join(g.opts.BackupDir, BackupFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Record 5.4: the real gateway names its snapshot.lock.json; the
		// stand-in names the file it would have read. Error once, then debug.
		level := slog.LevelError
		if g.syncFailedLogged {
			level = slog.LevelDebug
		}
		g.syncFailedLogged = true
		if fi, serr := os.Stat(g.opts.BackupDir); serr == nil && fi.IsDir() {
			g.log.Log(context.Background(), level, "", standinlog.Event(standinlog.EvSyncFailed), standinlog.Source(standinlog.SrcRepository),
				standinlog.Exception("Gateway.Configuration.ConfigurationNotFoundException: "+filepath.ToSlash(path)))
		}
		return
	}
	unusable := func(msg string, args ...any) {
		g.log.Warn(msg, append([]any{standinlog.Event(standinlog.EvBackupUnusable), standinlog.Source(standinlog.SrcFileBackup)}, args...)...)
	}
	if err != nil {
		unusable("cannot read configuration backup", "error", err.Error())
		return
	}
	cfg, err := apimconfig.Decode(data)
	if err != nil {
		unusable("configuration backup is unusable", "error", err.Error())
		return
	}
	if g.tokParsed && cfg.GatewayID != g.tok.GatewayID {
		unusable("configuration backup belongs to another gateway; ignoring it")
		return
	}
	g.install(cfg, sourceBackup)
}

// checkExpiry logs, once, that the token has expired.
func (g *Gateway) checkExpiry() bool {
	if !g.tokParsed || !g.tok.Expired(g.opts.Clock.Now()) {
		return false
	}
	if g.expiredWarned.CompareAndSwap(false, true) {
		g.log.Warn("the gateway token has expired: API calls now get 200 with an empty body, as users report of the real gateway; regenerate the token",
			standinlog.Event(standinlog.EvTokenExpired), standinlog.Source(standinlog.SrcStandin))
	}
	return true
}
