package configservice

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

// EntraApp is the one Microsoft Entra app registration the stand-in token
// endpoint knows (stand-in, not Microsoft Entra ID): a gateway that
// authenticates with config.service.auth=azureAdApp gets an access token
// here for this tenant, client id and any of Secrets (several, so a
// rotation can add the new secret before the old one goes).
type EntraApp struct {
	TenantID string
	ClientID string
	Secrets  []string
}

// TokenPath is the token endpoint under an authority, as Entra ID's v2.0
// endpoint is: {authority}/{tenant}/oauth2/v2.0/token.
const TokenPath = "/oauth2/v2.0/token"

// accessTokenLifetime is what the stand-in grants, as Entra ID does (about an hour).
const accessTokenLifetime = time.Hour

// entraID prefixes the gateway id an access token carries.
const entraID = "entra-app-"

// oauthError is an OAuth 2.0 error answer shaped as Entra ID's.
func oauthError(w http.ResponseWriter, status int, code, aadsts, msg string) {
	standinhttp.WriteJSON(w, status, map[string]any{
		"error":             code,
		"error_description": aadsts + ": " + msg + " (stand-in, not Microsoft Entra ID)",
		"error_codes":       []int{},
	})
}

// token grants an access token for the client credentials flow. It never
// logs or echoes the secret it was sent.
func (s *Service) token(w http.ResponseWriter, r *http.Request) {
	app := s.opts.Entra
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144", "the request body must be application/x-www-form-urlencoded")
		return
	}
	f := r.PostForm
	secretOK := false
	for _, sec := range app.Secrets {
		if sec != "" && subtle.ConstantTimeCompare([]byte(sec), []byte(f.Get("client_secret"))) == 1 {
			secretOK = true
		}
	}
	switch {
	case f.Get("grant_type") != "client_credentials":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003", "the app asked for a grant type the stand-in does not support (only client_credentials)")
	case !strings.EqualFold(tenant, app.TenantID):
		s.opts.Logger.Warn("token request refused", standinlog.Event(standinlog.EvTokenRequestRefused), "reason", "unknown tenant", "tenant", tenant)
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002", fmt.Sprintf("Tenant '%s' not found", tenant))
	case !strings.EqualFold(f.Get("client_id"), app.ClientID):
		s.opts.Logger.Warn("token request refused", standinlog.Event(standinlog.EvTokenRequestRefused), "reason", "unknown application", "clientId", f.Get("client_id"))
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016", fmt.Sprintf("Application with identifier '%s' was not found in the directory", f.Get("client_id")))
	case !secretOK:
		s.opts.Logger.Warn("token request refused", standinlog.Event(standinlog.EvTokenRequestRefused), "reason", "invalid client secret", "clientId", app.ClientID)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215",
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+app.ClientID+"'")
	default:
		at, err := token.Mint(s.opts.Key, entraID+app.ClientID, s.opts.Now().Add(accessTokenLifetime))
		if err != nil {
			standinhttp.WriteJSON(w, http.StatusInternalServerError, apiError("InternalError", "cannot mint an access token"))
			return
		}
		s.opts.Logger.Info("access token granted", standinlog.Event(standinlog.EvAccessTokenGranted), "clientId", app.ClientID, "scope", f.Get("scope"))
		standinhttp.WriteJSON(w, http.StatusOK, map[string]any{
			"token_type":   "Bearer",
			"expires_in":   int(accessTokenLifetime.Seconds()),
			"access_token": token.StripPrefix(at),
		})
	}
}
