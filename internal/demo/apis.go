package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/gateway"
)

// API is a proxy API the demo's stand-in configuration service publishes
// besides its echo API: calls to Path (and below) go to BackendURL, as an
// API with a backend URL set in Azure does. The JSON is the stand-in's
// STANDIN_APIS entry.
type API struct {
	Name                 string `json:"name"`
	Path                 string `json:"path"`
	BackendURL           string `json:"backendUrl"`
	SubscriptionRequired bool   `json:"subscriptionRequired"`
}

// Where the list lives: a key of the record ConfigMap, which the
// configuration service reads as STANDIN_APIS; a hash of it on the pod
// template restarts the service when it changes.
const (
	EnvAPIs        = "STANDIN_APIS"
	RecordAPIsKey  = "apis"
	annotationAPIs = "apimdev.io/apis-sha256"
	// EchoPath is the stand-in's own API, always published.
	EchoPath = "/echo"
	// GatewayPollInterval is how often the stand-in gateway asks the
	// configuration service for its configuration (its default).
	GatewayPollInterval = 10 * time.Second
)

// APIError is a demo API that cannot be added or removed, with the fix.
type APIError struct{ Msg, Fix string }

func (e *APIError) Error() string { return e.Msg }

// Hint says how to go on.
func (e *APIError) Hint() string { return e.Fix }

// NotDemoError says the cluster runs no demo, so there is no stand-in
// configuration to add an API to.
type NotDemoError struct{ Cluster string }

func (e *NotDemoError) Error() string {
	return fmt.Sprintf("cluster %q runs no demo: this adds an API to the demo's stand-in configuration (%s)", e.Cluster, Label)
}

// Hint says what to do on Azure, and how to start a demo.
func (e *NotDemoError) Hint() string {
	return "on Azure, add the API in the portal (APIs > Add API > HTTP) and set its backend URL (Settings > Web service URL); for the demo, start one with `apimdev up --demo --detach`"
}

var (
	apiNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	apiPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
)

// CheckAPI says what is wrong with a, alone or beside the APIs already
// there (and the echo API): the stand-in's own checks (STANDIN_APIS), so
// the configuration service never refuses a list apimdev wrote.
func CheckAPI(a API, existing []API) error {
	if !apiNameRE.MatchString(a.Name) {
		return &APIError{fmt.Sprintf("API name %q is not a DNS label", a.Name), "use lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit (e.g. mine)"}
	}
	if !apiPathRE.MatchString(a.Path) {
		return &APIError{fmt.Sprintf("--path %q is not a path such as /mine", a.Path), "start it with /, use letters, digits, '.', '_', '~' or '-' between the slashes, and no / at the end"}
	}
	if err := checkBackendURL(a.BackendURL); err != nil {
		return err
	}
	if a.Name == "echo" || strings.EqualFold(a.Path, EchoPath) {
		return &APIError{fmt.Sprintf("the demo's echo API is %s, named echo: %s on %s clashes with it", EchoPath, a.Name, a.Path), "pick another name and path"}
	}
	for _, e := range existing {
		if e.Name == a.Name {
			return &APIError{fmt.Sprintf("the demo already has an API named %s (on %s → %s)", a.Name, e.Path, e.BackendURL), "pick another name, or `apimdev demo api remove " + a.Name + "` first"}
		}
		if strings.EqualFold(e.Path, a.Path) {
			return &APIError{fmt.Sprintf("path %s is the demo's API %s already (→ %s)", a.Path, e.Name, e.BackendURL), "pick another path, or `apimdev demo api remove " + e.Name + "` first"}
		}
	}
	return nil
}

func checkBackendURL(raw string) error {
	fix := "give the backend as http://HOST:PORT[/base] or https://…, e.g. http://mine:8080 for `apimdev backend add mine --to 127.0.0.1:8080`"
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return &APIError{"--backend is empty", fix}
	case err != nil:
		return &APIError{fmt.Sprintf("--backend %q is not a URL", raw), fix}
	case u.Scheme != "http" && u.Scheme != "https":
		return &APIError{fmt.Sprintf("--backend %q must start with http:// or https://", raw), fix}
	case u.Hostname() == "":
		return &APIError{fmt.Sprintf("--backend %q has no host", raw), fix}
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return &APIError{fmt.Sprintf("--backend %q has a user, query or fragment", raw), "the gateway appends the caller's path and query to the backend URL: leave them out"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &APIError{fmt.Sprintf("--backend %q: port %s is not 1-65535", raw, p), fix}
		}
	}
	return nil
}

// encodeAPIs is the list as STANDIN_APIS reads it; "" for none.
func encodeAPIs(apis []API) string {
	if len(apis) == 0 {
		return ""
	}
	b, _ := json.Marshal(apis) // strings and bools always marshal
	return string(b)
}

func decodeAPIs(s string) ([]API, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var apis []API
	if err := json.Unmarshal([]byte(s), &apis); err != nil {
		return nil, fmt.Errorf("the demo's API list (ConfigMap %s/%s, key %s) is not valid JSON: %w", Namespace, RecordName, RecordAPIsKey, err)
	}
	return apis, nil
}

// withAPIs puts the list on the record and the configuration service's
// Deployment; with none, neither carries anything of it, so a demo
// without APIs is applied as it always was.
func withAPIs(record *corev1.ConfigMap, dep *appsv1.Deployment, apis []API) {
	enc := encodeAPIs(apis)
	if enc == "" {
		return
	}
	record.Data[RecordAPIsKey] = enc
	sum := sha256.Sum256([]byte(enc))
	dep.Spec.Template.Annotations[annotationAPIs] = hex.EncodeToString(sum[:8])
	c := &dep.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: EnvAPIs, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		// Optional: a pod that restarts between the record losing its last
		// API and the Deployment losing this variable still starts.
		LocalObjectReference: corev1.LocalObjectReference{Name: RecordName}, Key: RecordAPIsKey, Optional: ptr.To(true)}}})
}

// SetAPIs makes apis the demo's API list: the record and the configuration
// service's Deployment are applied (the Secret is left as it is) and the
// service is waited for until its new pod is ready. The gateway picks the
// new configuration up at its next poll (GatewayPollInterval).
func SetAPIs(ctx context.Context, c kubernetes.Interface, st State, apis []API, progress func(string, ...any)) error {
	if !st.Found {
		return errors.New("no demo in this cluster")
	}
	if st.APIsErr != nil {
		return st.APIsErr
	}
	s := &Setup{Keys: st.Keys, Image: st.Image, GatewayID: st.GatewayID, APIs: apis}
	if s.Image == "" {
		s.Image = DefaultImage
	}
	var objs []runtime.Object
	for _, o := range s.Objects(st.InitialTokenSHA) {
		switch o.(type) {
		case *corev1.ConfigMap, *appsv1.Deployment:
			objs = append(objs, o)
		}
	}
	if _, err := gateway.Apply(ctx, c, objs); err != nil {
		return err
	}
	progress("waiting for the stand-in configuration service to restart with %d API(s) besides echo (%s)", len(apis), Label)
	return s.wait(ctx, c)
}

// AddAPI checks a against the demo's APIs and adds it (see SetAPIs).
func AddAPI(ctx context.Context, c kubernetes.Interface, st State, a API, progress func(string, ...any)) error {
	if st.APIsErr != nil {
		return st.APIsErr
	}
	if err := CheckAPI(a, st.APIs); err != nil {
		return err
	}
	return SetAPIs(ctx, c, st, append(append([]API(nil), st.APIs...), a), progress)
}

// RemoveAPI removes the API named name (see SetAPIs) and returns it.
func RemoveAPI(ctx context.Context, c kubernetes.Interface, st State, name string, progress func(string, ...any)) (API, error) {
	if st.APIsErr != nil {
		return API{}, st.APIsErr
	}
	if name == "echo" {
		return API{}, &APIError{"the echo API is the stand-in's own: it stays", "`apimdev demo api list` shows the APIs you added"}
	}
	kept := make([]API, 0, len(st.APIs))
	var gone *API
	for _, a := range st.APIs {
		if a.Name == name {
			gone = &a
			continue
		}
		kept = append(kept, a)
	}
	if gone == nil {
		return API{}, &APIError{fmt.Sprintf("the demo has no API named %s", name), "`apimdev demo api list` shows the APIs you added"}
	}
	return *gone, SetAPIs(ctx, c, st, kept, progress)
}
