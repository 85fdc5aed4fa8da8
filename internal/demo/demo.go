package demo

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

// Label is said wherever the demo shows itself.
const Label = "stand-in, not Azure API Management"

// Where the demo lives and what it is called.
const (
	Namespace   = "apimdev-demo"
	ServiceName = "standin-config"
	RecordName  = "apimdev-demo"
	// Endpoint is the configuration endpoint the demo gateway polls.
	Endpoint = ServiceName + "." + Namespace + ".svc.cluster.local:8443"
	// DefaultImage is what scripts/e2e/standin-image.sh (and `make
	// demo-image`) builds from this repository's code, FROM scratch.
	DefaultImage = "apimdev-e2e/standin-gateway:2.11.1-standin"

	SubscriptionHeader = "Ocp-Apim-Subscription-Key"
	// SmokePath is the echo path up's own smoke calls use, so a lab can tell
	// its attendee's calls from apimdev's.
	SmokePath = "/echo/apimdev-demo"
	// TokenValidity is how long a minted demo token lasts.
	TokenValidity = 30 * 24 * time.Hour

	LabelDemo          = "apimdev.io/demo"
	AnnotationFirstTok = "apimdev.io/initial-token-sha256"
	annotationKeys     = "apimdev.io/keys-sha256"
	envSigningKey      = "STANDIN_GATEWAY_KEY"
	envSubscriptions   = "STANDIN_SUBSCRIPTION_KEYS"
)

// Keys are the demo's secrets: the token signing key the configuration
// service verifies with, and the subscription key the echo API accepts.
type Keys struct {
	Signing      string
	Subscription string
}

// NewKeys makes random keys; r nil is crypto/rand.
func NewKeys(r io.Reader) (Keys, error) {
	if r == nil {
		r = rand.Reader
	}
	var k Keys
	for _, dst := range []*string{&k.Signing, &k.Subscription} {
		b := make([]byte, 24)
		if _, err := io.ReadFull(r, b); err != nil {
			return Keys{}, fmt.Errorf("demo keys: %w", err)
		}
		*dst = hex.EncodeToString(b)
	}
	return k, nil
}

// Mint signs a stand-in gateway token for gatewayID expiring at the minute of
// expiry: "GatewayKey <id>&<yyyyMMddHHmm>&base64(HMAC-SHA512(key, id\nexpiry))".
func Mint(signingKey, gatewayID string, expiry time.Time) string {
	field := expiry.UTC().Format(token.ExpiryLayout)
	return token.Prefix + gatewayID + "&" + field + "&" + base64.StdEncoding.EncodeToString(mac(signingKey, gatewayID, field))
}

func mac(key, id, field string) []byte {
	h := hmac.New(sha512.New, []byte(key))
	h.Write([]byte(id + "\n" + field))
	return h.Sum(nil)
}

// ErrSignature says a token was not signed with the demo's key.
var ErrSignature = errors.New("the token is not signed with this demo's key")

// Verify checks that tok (with or without the prefix) was signed with
// signingKey and returns it parsed.
func Verify(signingKey, tok string) (token.Token, error) {
	t, err := token.Parse(tok)
	if err != nil {
		return t, err
	}
	parts := strings.Split(token.Clean(tok), "&")
	sig, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac(signingKey, parts[0], parts[1])) {
		return t, ErrSignature
	}
	return t, nil
}

// Token returns the gateway token for a demo run: existing (the token the
// cluster's Secret holds) when it is this demo's, for gatewayID, and good for
// more than a week; otherwise a new one valid TokenValidity. reused says which.
func (k Keys) Token(gatewayID, existing string, now time.Time) (tok token.Token, reused bool, err error) {
	if existing != "" {
		if t, err := Verify(k.Signing, existing); err == nil && t.GatewayID == gatewayID && t.HasExpiry && t.Expiry.Sub(now) > token.WarnWindow {
			return t, true, nil
		}
	}
	t, err := token.Parse(Mint(k.Signing, gatewayID, now.Add(TokenValidity)))
	return t, false, err
}

// TokenSHA256 fingerprints a Secret's token value; a hash of a random
// signature is not the token and cannot be replayed.
func TokenSHA256(secretValue string) string {
	s := sha256.Sum256([]byte(secretValue))
	return hex.EncodeToString(s[:])
}

// IsStandinImage says whether ref is the stand-in gateway's image.
func IsStandinImage(ref string) bool {
	return strings.Contains(gateway.Repo(ref), "standin-gateway")
}

// SmokeCalls are the demo's echo API calls, added to up's and smoke's calls.
func SmokeCalls(subscriptionKey string) []smoke.Call {
	return []smoke.Call{
		{Name: "demo echo with key", Method: "GET", Path: SmokePath + "?from=apimdev", Headers: map[string]string{SubscriptionHeader: subscriptionKey},
			Expect: smoke.Expect{Status: 200, JSON: map[string]string{"gateway": "stand-in", "api": "echo"}}},
		{Name: "demo echo without key", Method: "GET", Path: SmokePath, Expect: smoke.Expect{Status: 401}},
	}
}

// State is what a demo left in a cluster.
type State struct {
	Found           bool
	Keys            Keys
	Image           string
	InitialTokenSHA string
	GatewayID       string
	// APIs are the proxy APIs added with `apimdev demo api add`; APIsErr
	// says why the record's list could not be read (edited by hand), and
	// whatever would rewrite the list refuses to while it is set.
	APIs    []API
	APIsErr error
}

// Read reads the demo's keys and record from the cluster; Found is false when
// the cluster holds no demo.
func Read(ctx context.Context, c kubernetes.Interface) (State, error) {
	var st State
	sec, err := c.CoreV1().Secrets(Namespace).Get(ctx, ServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Keys lost; the record (and its API list) may still be there.
	case err != nil:
		return st, fmt.Errorf("reading the demo's Secret %s/%s: %w", Namespace, ServiceName, err)
	default:
		st.Keys = Keys{Signing: string(sec.Data[envSigningKey]), Subscription: firstKey(string(sec.Data[envSubscriptions]))}
		st.Found = st.Keys.Signing != ""
	}
	cm, err := c.CoreV1().ConfigMaps(Namespace).Get(ctx, RecordName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return st, nil
	case err != nil:
		// Its API list must not be lost to a read that failed.
		return st, fmt.Errorf("reading the demo's record %s/%s: %w", Namespace, RecordName, err)
	}
	st.InitialTokenSHA = cm.Annotations[AnnotationFirstTok]
	st.Image, st.GatewayID = cm.Data["image"], cm.Data["gatewayId"]
	st.APIs, st.APIsErr = decodeAPIs(cm.Data[RecordAPIsKey])
	return st, nil
}

func firstKey(s string) string {
	k, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(k)
}

// Setup is one demo deployment: the step `up --demo` runs before the
// gateway's deploy step.
type Setup struct {
	Keys      Keys
	Image     string
	GatewayID string
	// TokenSHA256 fingerprints the token up applies; the first one is kept
	// in the record so a lab can tell that the token was rotated since.
	TokenSHA256 string
	Timeout     time.Duration // for the configuration service to be ready; 0: 2 min
	Poll        time.Duration // 0: 500ms
	// APIs are the proxy APIs besides echo. DeployDemo carries the
	// cluster's list (what `apimdev demo api add` put there) over its own.
	APIs []API
}

func (s *Setup) labels() map[string]string {
	return map[string]string{"app": ServiceName, gateway.LabelManagedBy: gateway.ManagedBy, LabelDemo: "true"}
}

func (s *Setup) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: s.labels(), Annotations: map[string]string{"apimdev.io/note": Label}}
}

// Objects are the demo's typed objects: namespace, keys, record, the
// configuration service and its Service.
func (s *Setup) Objects(initialTokenSHA string) []runtime.Object {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: map[string]string{gateway.LabelManagedBy: gateway.ManagedBy, LabelDemo: "true"}, Annotations: map[string]string{"apimdev.io/note": Label}},
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: s.meta(ServiceName),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{envSigningKey: []byte(s.Keys.Signing), envSubscriptions: []byte(s.Keys.Subscription)},
	}
	record := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: s.meta(RecordName),
		Data:       map[string]string{"mode": "demo", "gateway": Label, "image": s.Image, "endpoint": Endpoint, "gatewayId": s.GatewayID},
	}
	record.Annotations[AnnotationFirstTok] = initialTokenSHA
	keysSum := sha256.Sum256([]byte(s.Keys.Signing + "\n" + s.Keys.Subscription))
	podLabels := s.labels()
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: s.meta(ServiceName),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": ServiceName}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{
					// New keys (a lost Secret re-made) restart the service.
					annotationKeys: hex.EncodeToString(keysSum[:8]),
				}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					Containers: []corev1.Container{{
						Name:            "config",
						Image:           s.Image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"config-service"},
						Ports: []corev1.ContainerPort{
							{Name: "https", ContainerPort: 8443, Protocol: corev1.ProtocolTCP},
							{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
						},
						EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: ServiceName}}}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
							RunAsUser: ptr.To[int64](gateway.GatewayUID)},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: s.meta(ServiceName),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": ServiceName},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 8443, TargetPort: intstr.FromInt32(8443), Protocol: corev1.ProtocolTCP}},
		},
	}
	withAPIs(record, dep, s.APIs)
	return []runtime.Object{ns, secret, record, dep, svc}
}

// DeployDemo applies the demo's objects and waits for the configuration
// service to be ready, so the gateway's first poll finds it.
func (s *Setup) DeployDemo(ctx context.Context, c kubernetes.Interface, progress func(string, ...any)) (string, error) {
	first := s.TokenSHA256
	prev, err := Read(ctx, c)
	if err == nil {
		err = prev.APIsErr
	}
	if err != nil {
		return "", err
	}
	if prev.InitialTokenSHA != "" {
		first = prev.InitialTokenSHA
	}
	// Every up re-applies the demo: the APIs added since stay.
	s.APIs = prev.APIs
	applied, err := gateway.Apply(ctx, c, s.Objects(first))
	if err != nil {
		return "", err
	}
	changed := 0
	for _, a := range applied {
		if a.Created || a.Changed {
			changed++
			progress("%s", a)
		}
	}
	progress("waiting for the stand-in configuration service (%s)", Label)
	if err := s.wait(ctx, c); err != nil {
		return "", err
	}
	return fmt.Sprintf("configuration service ready at %s (%s; %d object(s) changed)", Endpoint, Label, changed), nil
}

// ImageError says the node cannot get the stand-in image.
type ImageError struct{ Image, Reason, Message string }

func (e *ImageError) Error() string {
	return fmt.Sprintf("the stand-in configuration service cannot start: %s for image %s: %s", e.Reason, e.Image, e.Message)
}

// Hint says where the image comes from: nothing is pulled for the demo.
func (e *ImageError) Hint() string {
	return "the demo image is not pulled from anywhere: apimdev makes it from the " + BinaryName + " program that comes next to it in a release archive (or APIMDEV_STANDIN_BINARY), `make demo-image` builds it from this repository's code, or a kit brings it (`apimdev up --demo --kit kit.tar`); then run up again"
}

func (s *Setup) wait(ctx context.Context, c kubernetes.Interface) error {
	timeout, poll := s.Timeout, s.Poll
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	if poll == 0 {
		poll = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "no pod yet"
	for {
		d, err := c.AppsV1().Deployments(Namespace).Get(ctx, ServiceName, metav1.GetOptions{})
		if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= 1 && d.Status.ReadyReplicas >= 1 &&
			d.Status.Replicas == d.Status.UpdatedReplicas {
			return nil
		}
		pods, perr := c.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + ServiceName})
		if perr == nil {
			for _, p := range pods.Items {
				for _, cs := range p.Status.ContainerStatuses {
					if w := cs.State.Waiting; w != nil {
						// The stand-in's image is this machine's: a failed
						// pull will not succeed later.
						switch cl := gateway.ClassifyWaiting(w); {
						case cl == gateway.WaitingPull || cl == gateway.WaitingImage:
							return &ImageError{Image: s.Image, Reason: w.Reason, Message: w.Message}
						case cl.CannotStart(false):
							return fmt.Errorf("the stand-in configuration service's pod %s: %s: %s", p.Name, w.Reason, w.Message)
						case gateway.TransientWaiting(w.Message):
							// The kubelet's caches on a new node: it
							// retries. Said if it lasts to the deadline.
							last = fmt.Sprintf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
							continue
						}
						last = fmt.Sprintf("pod %s: %s", p.Name, w.Reason)
					} else if cs.State.Running != nil {
						last = fmt.Sprintf("pod %s: running, not ready yet", p.Name)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return fmt.Errorf("the stand-in configuration service was not ready after %s (%s)", timeout, last)
		case <-time.After(poll):
		}
	}
}
