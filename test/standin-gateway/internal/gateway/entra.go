package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// EntraApp is config.service.auth=azureAdApp: the gateway gets an access
// token for its Microsoft Entra app with the client credentials flow and
// sends it to the configuration endpoint as a bearer token, as the real
// gateway does (against the stand-in token endpoint here).
type EntraApp struct {
	TenantID, ClientID, ClientSecret string
	// Authority is Entra ID's login endpoint (default
	// https://login.microsoftonline.com); Audience the token's (default
	// https://azure-api.net/configuration).
	Authority, Audience string
}

const (
	defaultAuthority = "https://login.microsoftonline.com"
	defaultAudience  = "https://azure-api.net/configuration"
)

// errEntraRefused is Entra ID refusing the app's credentials: the gateway
// cannot get configuration until they are fixed.
var errEntraRefused = errors.New("Microsoft Entra ID refused the gateway's app credentials")

// missing names the settings Entra app authentication lacks.
func (e *EntraApp) missing(gatewayName string) []string {
	var m []string
	for _, s := range []struct{ name, v string }{
		{"config.service.auth.azureAd.tenantId", e.TenantID},
		{"config.service.auth.azureAd.clientId", e.ClientID},
		{"config.service.auth.azureAd.clientSecret", e.ClientSecret},
		{"gateway.name", gatewayName},
	} {
		if strings.TrimSpace(s.v) == "" {
			m = append(m, s.name)
		}
	}
	return m
}

// tokenURL is {authority}/{tenant}/oauth2/v2.0/token.
func (e *EntraApp) tokenURL() (string, error) {
	a := strings.TrimSuffix(strings.TrimSpace(e.Authority), "/")
	if a == "" {
		a = defaultAuthority
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("config.service.auth.azureAd.authority %q is not a URL", e.Authority)
	}
	return a + "/" + url.PathEscape(e.TenantID) + "/oauth2/v2.0/token", nil
}

// accessToken returns a cached access token, or asks Entra ID for one. The
// error never holds the secret: it is only in the request body.
func (g *Gateway) accessToken(ctx context.Context) (string, error) {
	now := g.opts.Clock.Now()
	if g.access != "" && now.Before(g.accessUntil) {
		return g.access, nil
	}
	e := g.opts.Entra
	tu, err := e.tokenURL()
	if err != nil {
		return "", err
	}
	aud := strings.TrimSuffix(e.Audience, "/")
	if aud == "" {
		aud = defaultAudience
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.ClientID}, "client_secret": {e.ClientSecret}, "scope": {aud + "/.default"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tu, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "apimdev-standin-gateway/"+g.opts.Version)
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: the token endpoint %s: %w", errUnreachable, tu, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(data, &body)
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("%w (%s): %s", errEntraRefused, body.Error, body.Description)
	case resp.StatusCode != http.StatusOK || body.AccessToken == "":
		return "", fmt.Errorf("%w: the token endpoint %s answered %s", errUnreachable, tu, resp.Status)
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	g.access, g.accessUntil = body.AccessToken, now.Add(life-life/10)
	return g.access, nil
}
