package cluster

import (
	"errors"
	"fmt"
	"io/fs"

	"k8s.io/client-go/tools/clientcmd"
)

// mergedName is what kind calls the context, cluster and user it merges
// into a kubeconfig (`up --merge-kubeconfig`).
func (m *Manager) mergedName() string { return "kind-" + m.Name }

// apiServer is the cluster's API server URL as apimdev's own kubeconfig
// knows it, or "" when that file says nothing.
func (m *Manager) apiServer() string {
	cfg, err := clientcmd.LoadFromFile(m.Kubeconfig)
	if err != nil {
		return ""
	}
	if c, ok := cfg.Clusters[m.mergedName()]; ok {
		return c.Server
	}
	return ""
}

// forgetMerged takes out of the user's default kubeconfig what
// `up --merge-kubeconfig` put there for this cluster, once the cluster is
// gone, as `kind delete cluster` does: otherwise the user's current context
// would point at a deleted cluster. Only entries named kind-<name> whose
// server is this cluster's are removed; a file without them is not touched.
func (m *Manager) forgetMerged(server string) error {
	if server == "" {
		return nil
	}
	path := clientcmd.NewDefaultClientConfigLoadingRules().GetDefaultFilename()
	if path == "" || path == m.Kubeconfig {
		return nil
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	name := m.mergedName()
	c, ok := cfg.Clusters[name]
	if !ok || c.Server != server {
		return nil
	}
	delete(cfg.Clusters, name)
	delete(cfg.AuthInfos, name)
	delete(cfg.Contexts, name)
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("removing context %s from %s: %w", name, path, err)
	}
	return nil
}
