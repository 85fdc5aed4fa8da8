package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// patchesMount is where the control-plane node of a cluster apimdev creates
// finds apimdev's kubeadm patches.
const patchesMount = "/kind/apimdev-patches"

// kubeadmPatches are kubeadm's own patches (its --patches directory: a file
// per target) for the clusters apimdev creates. kubeadm applies them at
// init; nothing reads them afterwards, so a lost directory costs nothing
// (the engine recreates an empty one at a restart).
//
// corednsdeployment: CoreDNS's readiness probe every second instead of
// kubeadm's 10 s. Until CoreDNS is Ready, no Service routes to it, and the
// gateway cannot resolve its configuration endpoint; with a 10 s period the
// first passing probe comes up to 10 s after CoreDNS is ready to serve (the
// kubelet's first probes of a new pod fall at a random point of the period),
// and `up` waited 2.5–9 s for it (median 4.5 s, BENCHMARKS.md). The probe is
// CoreDNS's own /ready endpoint, the failure threshold stays 3: a broken
// CoreDNS leaves rotation in 3 s instead of 30 s.
var kubeadmPatches = map[string]string{
	"corednsdeployment+strategic.yaml": `spec:
  template:
    spec:
      containers:
      - name: coredns
        readinessProbe:
          periodSeconds: 1
`,
}

// withKubeadmPatches writes the patches into PatchesDir (0700/0600, as all of
// apimdev's state: the node reads them as root), mounts it into the
// control-plane node and points kubeadm's init at it.
func (m *Manager) withKubeadmPatches(cfg *v1alpha4.Cluster) error {
	if m.PatchesDir == "" {
		return nil
	}
	abs, err := filepath.Abs(m.PatchesDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("kubeadm patches: %w", err)
	}
	_ = os.Chmod(abs, 0o700) // made by an earlier build with another mode
	for name, body := range kubeadmPatches {
		path := filepath.Join(abs, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return fmt.Errorf("kubeadm patches: %w", err)
		}
		_ = os.Chmod(path, 0o600)
	}
	cp := &cfg.Nodes[0]
	cp.ExtraMounts = append(cp.ExtraMounts, v1alpha4.Mount{HostPath: abs, ContainerPath: patchesMount, Readonly: true})
	cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, "kind: InitConfiguration\npatches:\n  directory: "+patchesMount+"\n")
	return nil
}
