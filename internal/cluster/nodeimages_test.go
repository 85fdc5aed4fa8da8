package cluster

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestNormalizedRefIsTheRuntimesName(t *testing.T) {
	for in, want := range map[string]string{
		"apimdev-e2e/standin-gateway:2.11.1-standin": "docker.io/apimdev-e2e/standin-gateway:2.11.1-standin",
		"busybox":      "docker.io/library/busybox:latest",
		"busybox:1.36": "docker.io/library/busybox:1.36",
		"mcr.microsoft.com/azure-api-management/gateway:2": "mcr.microsoft.com/azure-api-management/gateway:2",
		"localhost:5000/gw": "localhost:5000/gw:latest",
		"localhost/gw:dev":  "localhost/gw:dev",
	} {
		if got, ok := normalizedRef(in); !ok || got != want {
			t.Errorf("normalizedRef(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "gw@sha256:0123", "gw:2@sha256:0123", "gw:"} {
		if got, ok := normalizedRef(in); ok {
			t.Errorf("normalizedRef(%q) = %q; want none (the status does not name it so)", in, got)
		}
	}
}

const (
	gwImage    = "apimdev-e2e/standin-gateway:2.11.1-standin"
	gwName     = "docker.io/" + gwImage
	gwID       = "sha256:63c7c235731b60d497a92dad94e9c1f1bb54181de7e613484852b082a3ad791b"
	gwManifest = "sha256:bba4f32712b161dc12c186d038756c6c0783744633496b29a7b2d386a0081474"
)

// statusRig is a one-node cluster whose Node status lists images, and a
// record that says which manifest digest stands for gwID.
func statusRig(t *testing.T, images ...corev1.ContainerImage) *Manager {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "apimdev-control-plane"}, Status: corev1.NodeStatus{Images: images}}
	m := &Manager{Name: "apimdev", ImageRecord: filepath.Join(testdir.New(t), "node-images.json")}
	m.UseClient(fake.NewClientset(node))
	m.rememberDigests(gwID, []string{"docker.io/library/import-2026-12-06@" + gwManifest})
	return m
}

var oneNode = []nodes.Node{fakeNode("apimdev-control-plane")}

func TestNodeStatusProvesAnImageByItsRecordedDigest(t *testing.T) {
	ctx := context.Background()
	imported := corev1.ContainerImage{Names: []string{"docker.io/library/import-2026-12-06@" + gwManifest, gwName}}
	m := statusRig(t, corev1.ContainerImage{Names: []string{"registry.k8s.io/pause:3.10"}}, imported)
	if !m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Fatal("the node lists the tag and the digest recorded for the local ID as one image: held")
	}
	if m.statusHolds(ctx, oneNode, gwImage, "sha256:rebuilt") {
		t.Error("the local image was rebuilt (another ID): not proven, the runtime must be asked")
	}
	if m.statusHolds(ctx, oneNode, "apimdev-e2e/standin-gateway:2.12.1-standin", gwID) {
		t.Error("another tag: not proven")
	}
	if m.statusHolds(ctx, append(oneNode, fakeNode("apimdev-worker")), gwImage, gwID) {
		t.Error("a node without a Node object: not proven")
	}

	m.rememberLoad(gwImage, gwID)
	if !m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Error("just after a load of this very ID: a lagging list can only show it or not show the tag; held")
	}
	m.rememberLoad(gwImage, "sha256:rebuilt")
	if m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Error("a moment after another ID was loaded under the tag, the kubelet's list may lag: not proven")
	}
}

func TestNodeStatusProvesNothingWithoutBothNamesOnOneImage(t *testing.T) {
	ctx := context.Background()
	// The tag on one image, the digest on another: the tag moved.
	m := statusRig(t, corev1.ContainerImage{Names: []string{gwName}},
		corev1.ContainerImage{Names: []string{"docker.io/library/import-2026-12-06@" + gwManifest}})
	if m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Fatal("the tag names another image than the recorded digest: not proven")
	}
	// No record: nothing stands for the ID.
	m = statusRig(t, corev1.ContainerImage{Names: []string{"docker.io/library/import-2026-12-06@" + gwManifest, gwName}})
	m.ImageRecord = filepath.Join(testdir.New(t), "none.json")
	if m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Fatal("no record of the digest: not proven")
	}
	// No client: the runtime is asked.
	m = &Manager{ImageRecord: filepath.Join(testdir.New(t), "node-images.json")}
	m.rememberDigests(gwID, []string{"x@" + gwManifest})
	if m.statusHolds(ctx, oneNode, gwImage, gwID) {
		t.Fatal("no client: not proven")
	}
}
