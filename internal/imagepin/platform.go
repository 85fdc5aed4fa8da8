package imagepin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/apimdev/apimdev/internal/gateway"
)

// Platform is what an image is built for: os/architecture, and the
// architecture's variant when it has one (arm/v7).
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Runs says a Linux node of architecture arch (a Go name: amd64, arm64)
// runs this platform.
func (p Platform) Runs(arch string) bool {
	return (p.OS == "linux" || p.OS == "") && p.Architecture == arch
}

// Where an image's platforms were read.
const (
	FromLocal    = "the local image"
	FromRegistry = "the registry"
)

// ImagePlatforms is what an image is built for, and where that was read.
type ImagePlatforms struct {
	Image     string     `json:"image"`
	Platforms []Platform `json:"platforms"`
	// From is FromLocal or FromRegistry.
	From string `json:"from"`
}

// Has says one of the platforms runs on a Linux node of architecture arch.
func (ip ImagePlatforms) Has(arch string) bool {
	return slices.ContainsFunc(ip.Platforms, func(p Platform) bool { return p.Runs(arch) })
}

// PlatformsOf is what image is built for: the local image's platform when
// the image is on this machine (what apimdev loads into the node is that
// one), else the platforms its registry lists. The error says why neither
// could tell.
func (p Pinner) PlatformsOf(ctx context.Context, image string) (ImagePlatforms, error) {
	var localErr error
	if p.Local != nil {
		pl, found, err := p.Local.Platform(ctx, image)
		switch {
		case err != nil:
			localErr = fmt.Errorf("the local image: %w", err)
		case found && pl.Architecture != "":
			return ImagePlatforms{Image: image, Platforms: []Platform{pl}, From: FromLocal}, nil
		}
	}
	list := p.Platforms
	if list == nil {
		list = Registry{Client: p.HTTP}.Platforms
	}
	lctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	ps, err := list(lctx, image)
	if err != nil {
		return ImagePlatforms{Image: image}, errors.Join(localErr, err)
	}
	return ImagePlatforms{Image: image, Platforms: ps, From: FromRegistry}, nil
}

// The media types a manifest can have, in the order they are asked for.
const (
	mediaOCIIndex     = "application/vnd.oci.image.index.v1+json"
	mediaDockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerSingle = "application/vnd.docker.distribution.manifest.v2+json"
)

// Size bounds of what a registry sends.
const (
	maxManifest = 4 << 20
	maxConfig   = 4 << 20
	maxToken    = 64 << 10
)

var (
	repoPathRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE   = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// Reference is where an image's manifest is asked for: the registry's
// host, the repository's path on it, and the tag or digest.
type Reference struct{ Host, Path, Ref string }

// ParseReference reads an image reference as Docker does: a first segment
// with a dot or a port (or localhost) is the registry's host, else it is
// Docker Hub (registry-1.docker.io, with library/ before one-segment
// names); no tag means latest.
func ParseReference(image string) (Reference, error) {
	name, digest, _ := strings.Cut(image, "@")
	r := Reference{Host: "docker.io", Path: gateway.Repo(name), Ref: digest}
	if r.Ref == "" {
		r.Ref = gateway.Tag(name)
	}
	if r.Ref == "" {
		r.Ref = "latest"
	}
	if first, rest, ok := strings.Cut(r.Path, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.Host, r.Path = first, rest
	}
	if r.Host == "docker.io" || r.Host == "index.docker.io" {
		r.Host = "registry-1.docker.io"
		if !strings.Contains(r.Path, "/") {
			r.Path = "library/" + r.Path
		}
	}
	if !repoPathRE.MatchString(r.Path) || !tagRE.MatchString(r.Ref) && !digestRE.MatchString(r.Ref) {
		return Reference{}, fmt.Errorf("%q is not an image reference a registry can be asked about", image)
	}
	return r, nil
}

// Platforms reads what image is built for from its registry: an index (or
// a manifest list) names its platforms, skipping attestations (unknown/
// unknown); a single manifest's platform is in its config blob.
func (r Registry) Platforms(ctx context.Context, image string) ([]Platform, error) {
	ref, err := ParseReference(image)
	if err != nil {
		return nil, err
	}
	rs := &registrySession{client: r.Client, ref: ref}
	if rs.client == nil {
		rs.client = http.DefaultClient
	}
	accept := strings.Join([]string{mediaOCIIndex, mediaDockerList, mediaOCIManifest, mediaDockerSingle}, ", ")
	body, err := rs.get(ctx, "manifests/"+ref.Ref, accept, maxManifest)
	if err != nil {
		return nil, err
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Platform *Platform `json:"platform"`
		} `json:"manifests"`
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("the manifest of %s: %w", image, err)
	}
	if m.MediaType == mediaOCIIndex || m.MediaType == mediaDockerList || len(m.Manifests) > 0 {
		var out []Platform
		for _, e := range m.Manifests {
			if p := e.Platform; p != nil && p.OS != "unknown" && p.Architecture != "unknown" && !slices.Contains(out, *p) {
				out = append(out, *p)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("the index of %s names no platform", image)
		}
		return out, nil
	}
	return rs.configPlatform(ctx, m.Config.Digest, image)
}

// configPlatform is a single manifest's platform, from its config blob.
func (rs *registrySession) configPlatform(ctx context.Context, digest, image string) ([]Platform, error) {
	if !digestRE.MatchString(digest) {
		return nil, fmt.Errorf("the manifest of %s names no config blob", image)
	}
	body, err := rs.get(ctx, "blobs/"+digest, "*/*", maxConfig)
	if err != nil {
		return nil, err
	}
	if alg, want, _ := strings.Cut(digest, ":"); alg == "sha256" {
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != want {
			return nil, fmt.Errorf("the config blob of %s does not match its digest", image)
		}
	}
	var p Platform
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("the config blob of %s: %w", image, err)
	}
	if p.Architecture == "" {
		return nil, fmt.Errorf("the config blob of %s names no architecture", image)
	}
	return []Platform{p}, nil
}

// registrySession asks one repository of a registry, anonymously, with the
// bearer token the registry hands out when it asks for one.
type registrySession struct {
	client *http.Client
	ref    Reference
	bearer string
}

// get reads /v2/<path>/<what>, at most limit bytes, answering one bearer
// challenge (401) with an anonymous token.
func (rs *registrySession) get(ctx context.Context, what, accept string, limit int64) ([]byte, error) {
	u := "https://" + rs.ref.Host + "/v2/" + rs.ref.Path + "/" + what
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		if rs.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+rs.bearer)
		}
		resp, err := rs.client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			params, ok := bearerChallenge(resp.Header.Get("WWW-Authenticate"))
			drain(resp)
			if !ok {
				return nil, fmt.Errorf("%s wants credentials to read %s (no anonymous bearer challenge)", rs.ref.Host, rs.ref.Path)
			}
			if rs.bearer, err = rs.token(ctx, params); err != nil {
				return nil, err
			}
			continue
		}
		return readOK(resp, limit, u)
	}
}

// readOK is a 200 answer's body, at most limit bytes; any other status is
// an error naming what was asked.
func readOK(resp *http.Response, limit int64, what string) ([]byte, error) {
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", what, resp.Status)
	}
	return readAtMost(resp.Body, limit, what)
}

// token asks the challenge's realm for an anonymous pull token.
func (rs *registrySession) token(ctx context.Context, params map[string]string) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || realm.Scheme != "https" || realm.Host == "" {
		return "", fmt.Errorf("%s asks for a token from %q, not an https address", rs.ref.Host, params["realm"])
	}
	q := realm.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + rs.ref.Path + ":pull"
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := rs.client.Do(req)
	if err != nil {
		return "", err
	}
	body, err := readOK(resp, maxToken, "anonymous token for "+rs.ref.Path+" from "+realm.Host)
	if err != nil {
		return "", err
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return "", fmt.Errorf("anonymous token for %s from %s: %w", rs.ref.Path, realm.Host, err)
	}
	if t.Token == "" {
		t.Token = t.AccessToken
	}
	if t.Token == "" {
		return "", fmt.Errorf("anonymous token for %s from %s: the answer has none", rs.ref.Path, realm.Host)
	}
	return t.Token, nil
}

// bearerChallenge reads a WWW-Authenticate header's Bearer parameters
// (realm, service, scope), quoted or not.
func bearerChallenge(h string) (map[string]string, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	params := map[string]string{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			val, after = quoted(after[1:])
		} else {
			val, after, _ = strings.Cut(after, ",")
		}
		params[strings.ToLower(strings.TrimSpace(key))] = strings.TrimSpace(val)
		rest = strings.TrimLeft(after, ", \t")
	}
	return params, params["realm"] != ""
}

// quoted reads a quoted string's text up to its closing quote (backslash
// escapes a character) and returns it with what follows the quote.
func quoted(s string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// readAtMost reads r whole, refusing more than limit bytes.
func readAtMost(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: the answer is larger than %d bytes", what, limit)
	}
	return b, nil
}

// drain reads a little of what is left, so the connection can be reused,
// and closes the body.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
