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
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

// maxConfigBytes bounds what the gateway reads from the config service.
const maxConfigBytes = 4 << 20

var (
	// errRefused is a 401/403 from the configuration endpoint.
	errRefused = errors.New("configuration endpoint refused the token")
	// errUnreachable wraps failures where the endpoint could not be asked at all
	// (or answered that it is unavailable): the cases a backup is for.
	errUnreachable = errors.New("configuration endpoint unreachable")
)

// poll fetches configuration at once, then every PollInterval, until ctx is done.
func (g *Gateway) poll(ctx context.Context) {
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
		g.install(cfg, "configuration service")
		g.writeBackup(cfg)
		if g.lastOutcome != "" && g.lastOutcome != "ok" {
			g.log.Info("configuration endpoint answering again")
		}
		g.outcome("ok", slog.LevelDebug, "configuration fetched", "revision", cfg.Revision)
	case errors.Is(err, errRefused):
		if g.opts.Entra != nil {
			g.access = "" // ask Entra ID again next time
		}
		g.outcome("refused", slog.LevelError, errRefused.Error(), "ready", g.state.Load() != nil)
	case errors.Is(err, errEntraRefused):
		g.outcome("entra-refused", slog.LevelError, errEntraRefused.Error()+"; no configuration can be fetched until the client secret, client id or tenant id is fixed",
			"error", err.Error(), "ready", g.state.Load() != nil)
	case errors.As(err, new(x509.UnknownAuthorityError)):
		// As the real gateway's RemoteCertificateChainErrors/UntrustedRoot:
		// a CA it does not know signed the endpoint's certificate.
		g.outcome("untrusted", slog.LevelError, "configuration endpoint's TLS certificate is not trusted: a CA this gateway does not know signed it",
			"error", err.Error(), "keepingLastConfiguration", g.state.Load() != nil)
		if g.state.Load() == nil {
			g.loadBackup()
		}
	case errors.Is(err, errUnreachable):
		g.outcome("unreachable", slog.LevelWarn, "configuration endpoint unreachable",
			"error", err.Error(), "keepingLastConfiguration", g.state.Load() != nil)
		if g.state.Load() == nil {
			g.loadBackup()
		}
	default:
		g.outcome("invalid", slog.LevelError, "configuration endpoint sent an unusable answer; keeping the last configuration",
			"error", err.Error())
	}
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
	req.Header.Set("User-Agent", "apimdev-standin-gateway/"+g.opts.Version)
	resp, err := g.client.Do(req)
	if err != nil {
		return apimconfig.Configuration{}, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return apimconfig.Configuration{}, errRefused
	case resp.StatusCode >= 500:
		return apimconfig.Configuration{}, fmt.Errorf("%w: it answered %s", errUnreachable, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return apimconfig.Configuration{}, fmt.Errorf("configuration endpoint answered %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigBytes))
	if err != nil {
		return apimconfig.Configuration{}, fmt.Errorf("%w: reading the answer: %w", errUnreachable, err)
	}
	return apimconfig.Decode(data)
}

// install makes cfg the live configuration.
func (g *Gateway) install(cfg apimconfig.Configuration, source string) {
	prev := g.state.Swap(&loaded{cfg: cfg, source: source})
	switch {
	case prev == nil:
		g.log.Info("configuration loaded; gateway ready", "source", source, "revision", cfg.Revision, "apis", len(cfg.APIs))
	case prev.cfg.Revision != cfg.Revision || prev.source != source:
		g.log.Info("configuration changed", "source", source, "revision", cfg.Revision, "apis", len(cfg.APIs))
	}
	g.checkExpiry()
}

// checkBackupDir says at start whether backup is on, as the real gateway's
// behaviour depends on a volume being mounted there.
func (g *Gateway) checkBackupDir() {
	dir := g.opts.BackupDir
	if dir == "" {
		g.log.Info("configuration backup disabled")
		return
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		g.log.Info("configuration backup disabled: no directory mounted", "dir", dir)
		return
	}
	f, err := os.CreateTemp(dir, ".standin-write-check-*")
	if err != nil {
		// The real gateway fails with UnauthorizedAccessException here when the
		// volume is not writable by GID 1001 (no fsGroup).
		g.log.Warn("configuration backup directory is not writable; backup will fail", "dir", dir, "error", err.Error())
		return
	}
	f.Close()
	os.Remove(f.Name())
	g.log.Info("configuration backup enabled", "dir", dir)
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
			g.log.Warn("configuration backup failed", "error", err.Error())
		}
		g.lastBackupErr = err.Error()
	case err == nil:
		if g.lastBackupErr != "" {
			g.log.Info("configuration backup written again")
		}
		g.lastBackupErr = ""
		g.log.Debug("configuration backup written", "revision", cfg.Revision)
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
	data, err := os.ReadFile(filepath.Join(g.opts.BackupDir, BackupFile))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		g.log.Warn("cannot read configuration backup", "error", err.Error())
		return
	}
	cfg, err := apimconfig.Decode(data)
	if err != nil {
		g.log.Warn("configuration backup is unusable", "error", err.Error())
		return
	}
	if g.tokParsed && cfg.GatewayID != g.tok.GatewayID {
		g.log.Warn("configuration backup belongs to another gateway; ignoring it")
		return
	}
	g.log.Warn("started from configuration backup", "revision", cfg.Revision)
	g.install(cfg, "backup")
}

// checkExpiry logs, once, that the token has expired.
func (g *Gateway) checkExpiry() bool {
	if !g.tokParsed || !g.tok.Expired(g.opts.Clock.Now()) {
		return false
	}
	if g.expiredWarned.CompareAndSwap(false, true) {
		g.log.Warn("the gateway token has expired: API calls now get 200 with an empty body, as users report of the real gateway; regenerate the token")
	}
	return true
}
