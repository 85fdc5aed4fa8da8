package pipeline

import (
	"context"
	"time"

	"github.com/apimdev/apimdev/internal/diagnose"
	"github.com/apimdev/apimdev/internal/token"
)

// Diagnostics is `apimdev doctor`'s collector for this session: the state
// directory, the engine, the cluster and, when it answers, its client and
// the token it runs (every form of which is scrubbed), plus userToken when
// the user holds one.
func (s *Session) Diagnostics(ctx context.Context, version string, nodeLogs bool, now time.Time, userToken token.Token) *diagnose.Collector {
	c := &diagnose.Collector{Version: version, Config: s.Config, Files: s.Files, Docker: s.Docker, Endpoint: s.Endpoint, Profile: s.Names,
		NodeLogs: nodeLogs, Now: func() time.Time { return now }}
	if m, ok := s.Cluster.(diagnose.ClusterReader); ok {
		c.Cluster = m
	}
	// The token running in the cluster is what logs could quote; the one the
	// user holds (if any) is scrubbed too, in case it differs.
	if err := s.Connect(); err != nil {
		c.ClientErr = err
	} else {
		c.Client = s.Client
		tctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Read)
		if tok, err := s.ClusterToken(tctx); err == nil {
			c.Token = tok
		}
		cancel()
	}
	if !userToken.IsZero() {
		if c.Token.IsZero() {
			c.Token = userToken
		}
		c.Secrets = append(c.Secrets, diagnose.TokenSecrets(userToken)...)
	}
	return c
}
