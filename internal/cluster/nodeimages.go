package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/apimdev/apimdev/internal/state"
)

// Whether a node holds an image is asked of its container runtime (crictl
// inspecti, through a docker CLI process per node: ~0.1 s of a warm `up`).
// The kubelet also reports the images of its node, in the Node's status:
// every name of each image, its tags and its digests, but not its ID (the
// digest of its configuration), which is what LoadImage compares with the
// local engine's. An image that kind loaded from a `docker save` archive has
// one digest on the node: that of the manifest containerd wrote at import.
// A manifest names its configuration by digest, so a manifest digest stands
// for one image ID and no other: a fact about content, true on any node and
// forever. apimdev writes down that pair whenever the runtime shows both
// (ImageRecord); afterwards a Node whose status lists the image's tag and
// that digest as names of one image holds the image with that ID.
//
// The kubelet's list lags the runtime by up to about 40 s (it caches the
// runtime's images and posts its status every 10 s). A load in that time
// moves the tag while the status still shows the old image; that matters only
// when the image loaded was not the one the local engine has now (rebuilt,
// loaded, then tagged back): for a while after apimdev loaded another ID
// under the tag, the status is not taken as proof. A tag moved on the node by
// hand in that time goes unseen, as it would between two runs.

// statusLag is how long after a load of another ID the Node status is not
// trusted for that tag.
const statusLag = 2 * time.Minute

// imageRecord is the ImageRecord file: manifest digests and the image IDs
// they stand for, and what apimdev last loaded under each tag, and when.
type imageRecord struct {
	Digests map[string]string    `json:"digests"` // "sha256:…" of a manifest → image ID
	Loads   map[string]imageLoad `json:"loads,omitempty"`
}

// imageLoad is one load of an image into the cluster's nodes.
type imageLoad struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// maxRecordedDigests bounds the record: a few images, each rebuilt a few times.
const maxRecordedDigests = 32

func (m *Manager) readImageRecord() imageRecord {
	var r imageRecord
	if m.ImageRecord == "" {
		return r
	}
	if b, err := os.ReadFile(m.ImageRecord); err == nil {
		_ = json.Unmarshal(b, &r)
	}
	return r
}

func (m *Manager) writeImageRecord(r imageRecord) {
	if m.ImageRecord == "" {
		return
	}
	if len(r.Digests) > maxRecordedDigests {
		r.Digests = nil // start again: each is written down anew when seen
	}
	for tag, l := range r.Loads {
		if time.Since(l.At) > statusLag {
			delete(r.Loads, tag)
		}
	}
	if b, err := json.Marshal(r); err == nil {
		_ = state.WriteFile(m.ImageRecord, b)
	}
}

// rememberDigests writes down that each of digests (names "repo@sha256:…")
// stands for image ID id.
func (m *Manager) rememberDigests(id string, digests []string) {
	if m.ImageRecord == "" || id == "" || len(digests) == 0 {
		return
	}
	r := m.readImageRecord()
	if r.Digests == nil {
		r.Digests = map[string]string{}
	}
	changed := false
	for _, d := range digests {
		if _, dg, ok := strings.Cut(d, "@"); ok && r.Digests[dg] != id {
			r.Digests[dg], changed = id, true
		}
	}
	if changed {
		m.writeImageRecord(r)
	}
}

// rememberLoad writes down that image, with ID id, is being loaded into the
// cluster now.
func (m *Manager) rememberLoad(image, id string) {
	if m.ImageRecord == "" {
		return
	}
	r := m.readImageRecord()
	if r.Loads == nil {
		r.Loads = map[string]imageLoad{}
	}
	r.Loads[image] = imageLoad{ID: id, At: time.Now().UTC()}
	m.writeImageRecord(r)
}

// UseClient gives the manager a client of the cluster's API server, through
// which LoadImage reads the nodes' images from their status.
func (m *Manager) UseClient(cs kubernetes.Interface) { m.api = cs }

// statusHolds says whether the Node status of every node in ns proves that it
// holds image under the ID id (see above). Any doubt is false: the runtime is
// asked then.
func (m *Manager) statusHolds(ctx context.Context, ns []nodes.Node, image, id string) bool {
	ref, ok := normalizedRef(image)
	if !ok || m.api == nil || m.ImageRecord == "" || len(ns) == 0 {
		return false
	}
	r := m.readImageRecord()
	if len(r.Digests) == 0 {
		return false
	}
	if l, ok := r.Loads[image]; ok && l.ID != id && time.Since(l.At) < statusLag {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := m.api.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	byName := map[string]*corev1.Node{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	for _, n := range ns {
		node := byName[n.String()]
		if node == nil || !listsImage(node.Status.Images, ref, id, r.Digests) {
			return false
		}
	}
	return true
}

// listsImage says whether one of images is named ref and has a digest
// recorded to stand for id.
func listsImage(images []corev1.ContainerImage, ref, id string, digests map[string]string) bool {
	for _, img := range images {
		tagged, proven := false, false
		for _, name := range img.Names {
			if name == ref {
				tagged = true
			}
			if _, dg, ok := strings.Cut(name, "@"); ok && digests[dg] == id {
				proven = true
			}
		}
		if tagged && proven {
			return true
		}
	}
	return false
}

// normalizedRef is a tagged image reference as the container runtime names
// it (docker.io/library/… for Docker Hub's short names, :latest when no
// tag); false for a reference by digest, which the Node status does not
// name as given.
func normalizedRef(image string) (string, bool) {
	if image == "" || strings.Contains(image, "@") {
		return "", false
	}
	name, tag := image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	if name == "" || tag == "" {
		return "", false
	}
	first, rest, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case strings.ContainsAny(first, ".:") || first == "localhost":
	default:
		name = "docker.io/" + first + "/" + rest
	}
	return name + ":" + tag, true
}

// runtimeImage is what a node's container runtime says of image: its ID
// and its digests ("" and no error when it has no such image's details).
func runtimeImage(n nodes.Node, image string) (id string, digests []string, err error) {
	var out bytes.Buffer
	if err := n.Command("crictl", "inspecti", "-o", "json", image).SetStdout(&out).Run(); err != nil {
		return "", nil, err
	}
	var v struct {
		Status struct {
			ID          string   `json:"id"`
			RepoDigests []string `json:"repoDigests"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return "", nil, err
	}
	return v.Status.ID, v.Status.RepoDigests, nil
}
