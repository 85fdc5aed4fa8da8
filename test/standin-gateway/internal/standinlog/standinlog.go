// Package standinlog builds the stand-in's logger from the gateway's own
// telemetry settings, and makes every line say it comes from a stand-in so no
// one mistakes these logs for Azure API Management's.
package standinlog

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Marker is the attribute value stamped on every line.
const Marker = "stand-in gateway, not Azure API Management"

// Settings mirror the gateway's telemetry.logs.std and telemetry.logs.std.level.
type Settings struct {
	Format string // "json" or "text" (anything else: text)
	Level  string // debug, info, warn, error (default info)
	Mode   string // which stand-in mode is logging
}

// New returns a logger writing to w. Problems with the settings do not stop the
// stand-in; they are returned so the caller can log them with the logger it got.
func New(w io.Writer, s Settings) (*slog.Logger, []string) {
	var problems []string
	level, err := parseLevel(s.Level)
	if err != nil {
		problems = append(problems, err.Error())
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(strings.TrimSpace(s.Format)) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	default:
		problems = append(problems, fmt.Sprintf("telemetry.logs.std=%q is not json or text; logging text", s.Format))
		h = slog.NewTextHandler(w, opts)
	}
	logger := slog.New(h).With(slog.String("standin", Marker))
	if s.Mode != "" {
		logger = logger.With(slog.String("mode", s.Mode))
	}
	return logger, problems
}

// Discard is a logger for tests and callers that want silence.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info", "information":
		return slog.LevelInfo, nil
	case "debug", "trace", "verbose":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "critical":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("telemetry.logs.std.level=%q is not debug, info, warn or error; using info", s)
}
