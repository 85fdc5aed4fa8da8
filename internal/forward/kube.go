package forward

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// ServiceBackends follows a Service's EndpointSlices with an informer and
// answers which pods are ready, and on which container port, for each Service
// port. Terminating endpoints are never chosen for new connections.
type ServiceBackends struct {
	mu      sync.Mutex
	ready   map[int][]Backend // service port -> backends
	present map[string]bool   // every pod in any slice, terminating included
	changed chan struct{}
	svcPort map[int]string // service port -> port name
	// onChange, if set, is called after every change with the pods present.
	onChange func(present map[string]bool)
}

// SetOnChange makes fn be called after every change with the pods present.
// The informer calls it from its own goroutine: it is set under the lock
// that guards every read of it, so what fn's owner built before the call is
// seen by the informer too.
func (sb *ServiceBackends) SetOnChange(fn func(present map[string]bool)) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.onChange = fn
}

// WatchService starts following namespace/service. It returns once the
// informer has synced, so Ready answers from a full picture.
func WatchService(ctx context.Context, cs kubernetes.Interface, namespace, service string) (*ServiceBackends, error) {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading Service %s/%s: %w", namespace, service, err)
	}
	sb := &ServiceBackends{changed: make(chan struct{}), svcPort: map[int]string{}, ready: map[int][]Backend{}}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == corev1.ProtocolTCP || p.Protocol == "" {
			sb.svcPort[int(p.Port)] = p.Name
		}
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=" + service }))
	inf := f.Discovery().V1().EndpointSlices().Informer()
	recompute := func(any) { sb.recompute(inf.GetStore()) }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: recompute, DeleteFunc: recompute, UpdateFunc: func(_, n any) { recompute(n) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("watching endpoints of %s/%s: %w", namespace, service, ctx.Err())
	}
	sb.recompute(inf.GetStore())
	return sb, nil
}

func (sb *ServiceBackends) recompute(store cache.Store) {
	ready := map[int][]Backend{}
	present := map[string]bool{}
	for _, o := range store.List() {
		es, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		portOf := map[string]int{}
		for _, p := range es.Ports {
			if p.Port != nil && p.Name != nil {
				portOf[*p.Name] = int(*p.Port)
			}
		}
		for _, ep := range es.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			present[ep.TargetRef.Name] = true
			c := ep.Conditions
			if c.Ready == nil || !*c.Ready || (c.Terminating != nil && *c.Terminating) {
				continue
			}
			for sp, name := range sb.svcPort {
				if cp, ok := portOf[name]; ok {
					ready[sp] = append(ready[sp], Backend{Pod: ep.TargetRef.Name, Port: cp})
				}
			}
		}
	}
	sb.mu.Lock()
	sb.ready, sb.present = ready, present
	close(sb.changed)
	sb.changed = make(chan struct{})
	cb := sb.onChange
	sb.mu.Unlock()
	if cb != nil {
		cb(present)
	}
}

// Ready returns the ready backends for a Service port.
func (sb *ServiceBackends) Ready(servicePort int) []Backend {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]Backend(nil), sb.ready[servicePort]...)
}

// ReadyPods counts the distinct ready pods.
func (sb *ServiceBackends) ReadyPods() int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	seen := map[string]bool{}
	for _, bs := range sb.ready {
		for _, b := range bs {
			seen[b.Pod] = true
		}
	}
	return len(seen)
}

// Changed is closed on the next change.
func (sb *ServiceBackends) Changed() <-chan struct{} {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.changed
}

var _ Backends = (*ServiceBackends)(nil)

// SPDYDialer opens port-forward tunnels to pods through the API server.
type SPDYDialer struct {
	Config    *rest.Config
	Client    kubernetes.Interface
	Namespace string
}

var _ Dialer = (*SPDYDialer)(nil)

// Dial connects to pod's portforward subresource.
func (d *SPDYDialer) Dial(ctx context.Context, pod string) (Tunnel, error) {
	// A round tripper per tunnel, never shared: client-go's SPDY round
	// tripper keeps the connection it upgraded in a field until
	// NewConnection reads it, so two tunnels dialled at once through one
	// (two pods, new connections arriving together) could swap connections.
	transport, upgrader, err := spdy.RoundTripperFor(d.Config)
	if err != nil {
		return nil, err
	}
	url := d.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(d.Namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	type result struct {
		c   httpstream.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("opening port-forward to pod %s: %w", pod, r.err)
		}
		return &spdyTunnel{conn: r.c, done: make(chan struct{})}, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

type spdyTunnel struct {
	conn   httpstream.Connection
	nextID atomic.Int64
	done   chan struct{}
	once   sync.Once
}

func (t *spdyTunnel) Done() <-chan struct{} {
	t.once.Do(func() {
		go func() {
			<-t.conn.CloseChan()
			close(t.done)
		}()
	})
	return t.done
}

func (t *spdyTunnel) Close() error { return t.conn.Close() }

func (t *spdyTunnel) Open(port int) (Stream, error) {
	id := strconv.FormatInt(t.nextID.Add(1), 10)
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(port))
	h.Set(corev1.PortForwardRequestIDHeader, id)
	errStream, err := t.conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("creating error stream: %w", err)
	}
	_ = errStream.Close() // we never write to it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := t.conn.CreateStream(h)
	if err != nil {
		t.conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("creating data stream: %w", err)
	}
	s := &spdyStream{Stream: data, errStream: errStream, conn: t.conn}
	go s.watchErrors()
	return s, nil
}

type spdyStream struct {
	httpstream.Stream
	errStream httpstream.Stream
	conn      httpstream.Connection
	once      sync.Once
}

// watchErrors reads the error stream: the kubelet writes there when it cannot
// reach the container port (the pod is gone). The data stream is then reset so
// the local connection ends instead of hanging.
func (s *spdyStream) watchErrors() {
	buf := make([]byte, 512)
	n, _ := s.errStream.Read(buf)
	if n > 0 {
		_ = s.Stream.Reset()
	}
}

func (s *spdyStream) CloseWrite() error { return s.Stream.Close() }

func (s *spdyStream) Close() error {
	s.once.Do(func() {
		_ = s.Stream.Reset()
		_ = s.errStream.Reset()
		s.conn.RemoveStreams(s.Stream, s.errStream)
	})
	return nil
}
