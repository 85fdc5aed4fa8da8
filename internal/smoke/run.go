package smoke

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the outcome of one call.
type Result struct {
	Name      string        `json:"name"`
	Method    string        `json:"method"`
	URL       string        `json:"url"`
	Status    int           `json:"status"`
	Latency   time.Duration `json:"-"`
	LatencyMS float64       `json:"latencyMs"`
	Pass      bool          `json:"pass"`
	Reason    string        `json:"reason,omitempty"`
	Note      string        `json:"note,omitempty"`
}

// Runner runs calls against the forwarded ports.
type Runner struct {
	HTTPBase  string // e.g. http://127.0.0.1:8080
	HTTPSBase string // e.g. https://127.0.0.1:8443
	ProbePath string
	// Expand fills ${VAR} in headers and bodies, refusing apimdev's
	// credentials (a call that would send one fails, unsent).
	Expand  Expander
	Timeout time.Duration // per call; 0 means 10s
	// TokenExpired is set when the token's expiry field is in the past, so an
	// empty 200 can be explained.
	TokenExpired bool
	Client       *http.Client
}

func (r *Runner) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	t := r.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	return &http.Client{Timeout: t, Transport: &http.Transport{
		// The gateway's certificate is self-signed (or issued for another name)
		// and not trusted here: verification is off for these calls only.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // said so in the result's note
		Proxy:           nil,
	}}
}

// HealthCalls are the gateway's own health checks on both ports.
func (r *Runner) HealthCalls() []Call {
	yes := false
	return []Call{
		{Name: "health (http)", Method: http.MethodGet, Path: r.ProbePath, Port: "http", Expect: Expect{Status: 200, NonEmpty: &yes}},
		{Name: "health (https)", Method: http.MethodGet, Path: r.ProbePath, Port: "https", Expect: Expect{Status: 200, NonEmpty: &yes}},
	}
}

// Run makes every call in order, whatever fails, and returns all results.
func (r *Runner) Run(ctx context.Context, calls []Call) []Result {
	out := make([]Result, 0, len(calls))
	for _, c := range calls {
		out = append(out, r.one(ctx, c))
	}
	return out
}

func (r *Runner) one(ctx context.Context, c Call) Result {
	method := strings.ToUpper(c.Method)
	if method == "" {
		method = http.MethodGet
	}
	base := r.HTTPBase
	if c.Port == "https" {
		base = r.HTTPSBase
	}
	res := Result{Name: c.Name, Method: method, URL: base + c.Path}
	if c.Port == "https" {
		res.Note = "TLS verification off for this check: the gateway's certificate is not trusted locally"
	}
	headers, text, err := r.Expand.call(c)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	var body io.Reader
	if text != "" {
		body = strings.NewReader(text)
	}
	req, err := http.NewRequestWithContext(ctx, method, res.URL, body)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := r.client().Do(req)
	res.Latency = time.Since(start)
	res.LatencyMS = float64(res.Latency.Microseconds()) / 1000
	if err != nil {
		res.Reason = fmt.Sprintf("no answer: %v", unwrapURL(err))
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.Status = resp.StatusCode
	res.Reason = r.judge(c, resp.StatusCode, b)
	res.Pass = res.Reason == ""
	return res
}

func unwrapURL(err error) error {
	if ue, ok := err.(interface{ Unwrap() error }); ok && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

func (r *Runner) judge(c Call, status int, body []byte) string {
	want := c.Expect.Status
	if want == 0 {
		want = 200
	}
	if status != want {
		return fmt.Sprintf("status %d, expected %d%s", status, want, statusHint(status))
	}
	needBody := c.Expect.BodyContains != "" || len(c.Expect.JSON) > 0 || (c.Expect.NonEmpty != nil && *c.Expect.NonEmpty)
	if needBody && len(strings.TrimSpace(string(body))) == 0 && status == 200 {
		why := "200 with an empty body"
		if r.TokenExpired {
			return why + ": the gateway token has expired, and an expired gateway answers exactly like this; generate a new token in the portal and run `apimdev up` (or `apimdev token rotate`)"
		}
		return why + " (a gateway without its configuration answers like this: an expired token, or one the configuration endpoint refuses)"
	}
	if s := c.Expect.BodyContains; s != "" && !strings.Contains(string(body), s) {
		return fmt.Sprintf("body does not contain %q (got %s)", s, excerpt(body))
	}
	if len(c.Expect.JSON) > 0 {
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Sprintf("body is not JSON (%s)", excerpt(body))
		}
		for path, wantV := range c.Expect.JSON {
			got, ok := lookup(doc, path)
			if !ok {
				return fmt.Sprintf("JSON field %s is missing", path)
			}
			if got != wantV {
				return fmt.Sprintf("JSON field %s is %q, expected %q", path, got, wantV)
			}
		}
	}
	return ""
}

func statusHint(s int) string {
	switch s {
	case 401:
		return " (the gateway wants a subscription key: set the Ocp-Apim-Subscription-Key header)"
	case 404:
		return " (no API at this path on this gateway: is the API assigned to the gateway in the portal?)"
	case 503:
		return " (the gateway is not ready: it has not loaded its configuration)"
	}
	return ""
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}

// lookup walks a dotted path ("headers.host", "items.0.name") through decoded JSON.
func lookup(doc any, path string) (string, bool) {
	cur := doc
	for _, part := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		switch v := cur.(type) {
		case map[string]any:
			n, ok := v[part]
			if !ok {
				return "", false
			}
			cur = n
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return "", false
			}
			cur = v[i]
		default:
			return "", false
		}
	}
	switch v := cur.(type) {
	case string:
		return v, true
	case nil:
		return "null", true
	default:
		b, _ := json.Marshal(v)
		return string(b), true
	}
}

// Failed counts failed results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if !r.Pass {
			n++
		}
	}
	return n
}

// Table writes results as an aligned table with a closing line.
func Table(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tSTATUS\tLATENCY\tRESULT")
	notes := map[string]bool{}
	for _, r := range rs {
		st := "-"
		if r.Status != 0 {
			st = strconv.Itoa(r.Status)
		}
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL: " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fms\t%s\n", r.Name, st, r.LatencyMS, verdict)
		if r.Note != "" {
			notes[r.Note] = true
		}
	}
	tw.Flush()
	for n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(rs)-Failed(rs), Failed(rs))
}
