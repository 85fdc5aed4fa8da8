package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// TokenFileName is the file the exported kustomization reads the token from.
const TokenFileName = "gateway.token"

// Export writes the prod profile for a real cluster into dir: one manifest
// per object, production requests (never fitted), ReadWriteMany backup, the
// pinned image, and a kustomization.yaml whose secretGenerator reads the
// token from gateway.token. The token is written only when includeToken.
func (s *Session) Export(ctx context.Context, dir string, tok token.Token, includeToken bool) ([]string, error) {
	p, err := gateway.Prod(s.Config)
	if err != nil {
		return nil, err
	}
	// The image that really runs, when the local cluster has one.
	if s.Connect() == nil {
		if d, err := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{}); err == nil {
			p.Image = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	img, how, err := s.Pin.Pin(ctx, p.Image)
	if err != nil {
		return nil, err
	}
	p.Image = img
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var files, resources []string
	write := func(name string, data []byte) error {
		files = append(files, name)
		return state.WriteFile(filepath.Join(dir, name), data)
	}
	for _, o := range p.Objects(token.Token{}, true) {
		if _, ok := o.(*corev1.Secret); ok {
			continue // made by the kustomization's secretGenerator
		}
		y, err := gateway.YAML([]runtime.Object{o})
		if err != nil {
			return nil, err
		}
		kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
		name := fmt.Sprintf("%02d-%s.yaml", len(resources), kind)
		if err := write(name, y); err != nil {
			return nil, err
		}
		resources = append(resources, name)
	}
	var k strings.Builder
	fmt.Fprintf(&k, "# apimdev export --profile prod: gateway %s, image %s (%s)\n", p.Gateway, p.Image, how)
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, r := range resources {
		k.WriteString("- " + r + "\n")
	}
	fmt.Fprintf(&k, `secretGenerator:
# The token's Secret is made from %s, which holds one line:
#   GatewayKey <token from the portal's Deployment tab>
- name: %s
  namespace: %s
  files:
  - value=%s
  options:
    disableNameSuffixHash: true
    labels:
      app: %s
      app.kubernetes.io/managed-by: apimdev
`, TokenFileName, p.SecretName(), p.Namespace, TokenFileName, p.Gateway)
	if err := write("kustomization.yaml", []byte(k.String())); err != nil {
		return nil, err
	}
	if includeToken && !tok.IsZero() {
		if err := write(TokenFileName, []byte(tok.SecretValue()+"\n")); err != nil {
			return nil, err
		}
	} else {
		if err := write(TokenFileName+".example", []byte("GatewayKey <paste the token from the Azure portal here, then rename this file to "+TokenFileName+">\n")); err != nil {
			return nil, err
		}
	}
	readme := fmt.Sprintf(`# %s: production profile for a real cluster

Made by apimdev export. Apply with:

    cp gateway.token.example gateway.token   # then paste your token into it
    kubectl apply -k .

- Requests are the production values (%s CPU / %s per pod), never the ones fitted to a laptop.
- The backup volume asks for ReadWriteMany (%s) so every replica on every node shares one
  configuration backup; set prod.backup.storageClass to a class that offers it (e.g. Azure Files).
- The image is pinned: %s (%s).
- The token file is read by the kustomization's secretGenerator; keep it out of version control.
`, p.Gateway, s.Config.Prod.CPU, s.Config.Prod.Memory, s.Config.Prod.Backup.Size, p.Image, how)
	if err := write("README.md", []byte(readme)); err != nil {
		return nil, err
	}
	return files, nil
}
