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

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/helmvalues"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// TokenFileName is the file the exported kustomization reads the token from;
// ClientSecretFileName the Entra app's client secret (an env file: kustomize
// trims its line ending, which a secret must not keep).
const (
	TokenFileName        = "gateway.token"
	ClientSecretFileName = "client-secret.env"
)

// credentialFiles is how an export carries the gateway's credential.
type credentialFiles struct {
	file, example, generator, apply, note string
	line                                  func(secret string) string
}

func exportCredential(p gateway.Profile) credentialFiles {
	gen := func(comment, source string) string {
		return fmt.Sprintf(`secretGenerator:
%s- name: %s
  namespace: %s
  %s
  options:
    disableNameSuffixHash: true
    labels:
      app: %s
      app.kubernetes.io/managed-by: apimdev
`, comment, p.SecretName(), p.Namespace, source, p.Gateway)
	}
	switch p.Auth.Mode() {
	case config.AuthEntraApp:
		return credentialFiles{file: ClientSecretFileName,
			example:   gateway.AppSecretKey + "=<paste the Entra app's client secret Value here, then rename this file to " + ClientSecretFileName + ">",
			generator: gen("# The Entra app's client secret comes from "+ClientSecretFileName+", one line:\n#   "+gateway.AppSecretKey+"=<the secret's Value>\n", "envs:\n  - "+ClientSecretFileName),
			apply:     "    cp " + ClientSecretFileName + ".example " + ClientSecretFileName + "   # then paste the client secret's Value into it\n    kubectl apply -k .",
			note: fmt.Sprintf("- The gateway authenticates as Microsoft Entra app %s in tenant %s; the client secret file is read by the\n  kustomization's secretGenerator: keep it out of version control, and rotate it in Entra ID before it expires.",
				p.Auth.ClientID, p.Auth.TenantID),
			line: func(secret string) string { return gateway.AppSecretKey + "=" + secret }}
	case config.AuthWorkloadIdentity:
		return credentialFiles{
			apply: "    kubectl apply -k .",
			note: fmt.Sprintf("- The gateway authenticates with workload identity: the ServiceAccount %s/%s names client %s. The cluster needs\n"+
				"  an OIDC issuer and the workload identity webhook (AKS: --enable-oidc-issuer --enable-workload-identity), and the\n"+
				"  identity a federated credential for subject system:serviceaccount:%s:%s. No secret is involved.",
				p.Namespace, p.Gateway, p.Auth.ClientID, p.Namespace, p.Gateway)}
	}
	return credentialFiles{file: TokenFileName,
		example:   "GatewayKey <paste the token from the Azure portal here, then rename this file to " + TokenFileName + ">",
		generator: gen("# The token's Secret is made from "+TokenFileName+", which holds one line:\n#   GatewayKey <token from the portal's Deployment tab>\n", "files:\n  - value="+TokenFileName),
		apply:     "    cp " + TokenFileName + ".example " + TokenFileName + "   # then paste your token into it\n    kubectl apply -k .",
		note:      "- The token file is read by the kustomization's secretGenerator; keep it out of version control.",
		line:      func(secret string) string { return secret }}
}

// ExportHint is what to do with an export before applying it.
func (s *Session) ExportHint(dir string) string {
	c := exportCredential(gateway.Dev(s.Config))
	if c.file == "" {
		return "no secret is needed (workload identity): `kubectl apply -k " + dir + "` on a cluster with an OIDC issuer and the workload identity webhook"
	}
	what := "your token"
	if c.file == ClientSecretFileName {
		what = "the Entra app's client secret"
	}
	return fmt.Sprintf("the credential is not in them: copy %s.example to %s, paste %s, then `kubectl apply -k %s`", c.file, c.file, what, dir)
}

// ExportLeavesOut says which recorded backends (`apimdev backend add`) an
// export does not carry, and why; "" when there are none.
func (s *Session) ExportLeavesOut(ctx context.Context) string {
	rec := s.Recorded
	if rec == nil && s.Connect() == nil {
		rec, _ = s.ReadRecord(ctx)
	}
	if rec == nil || len(rec.Backends) == 0 {
		return ""
	}
	bs := rec.Backends
	var names []string
	for _, b := range bs {
		if b.Local() {
			names = append(names, fmt.Sprintf("%s (→ %s on this machine, through the relay)", b.Name, b.Target))
		} else {
			names = append(names, fmt.Sprintf("%s (image %s)", b.Name, b.Image))
		}
	}
	return "not exported: the backends " + strings.Join(names, ", ") + ". They are this machine's development loop; on a real cluster, point the API's backend URL at the deployed service"
}

// Export writes the prod profile for a real cluster into dir: one manifest
// per object, production requests (never fitted), ReadWriteMany backup, the
// pinned image, and a kustomization.yaml whose secretGenerator reads the
// token from gateway.token. The token is written only when includeToken.
func (s *Session) Export(ctx context.Context, dir string, tok token.Token, includeToken bool) ([]string, error) {
	p, how, err := s.exportProfile(ctx)
	if err != nil {
		return nil, err
	}
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
	cred := exportCredential(p)
	k.WriteString(cred.generator)
	if err := write("kustomization.yaml", []byte(k.String())); err != nil {
		return nil, err
	}
	switch {
	case cred.file == "":
	case includeToken && !tok.IsZero():
		if err := write(cred.file, []byte(cred.line(tok.SecretValue())+"\n")); err != nil {
			return nil, err
		}
	default:
		if err := write(cred.file+".example", []byte(cred.example+"\n")); err != nil {
			return nil, err
		}
	}
	readme := fmt.Sprintf(`# %s: production profile for a real cluster

Made by apimdev export. Apply with:

`+cred.apply+`

- Requests are the production values (%s CPU / %s per pod), never the ones fitted to a laptop.
- The backup volume asks for ReadWriteMany (%s) so every replica on every node shares one
  configuration backup; set prod.backup.storageClass to a class that offers it (e.g. Azure Files).
- The image is pinned: %s (%s).
`+cred.note+`
`, p.Gateway, s.Config.Prod.CPU, s.Config.Prod.Memory, s.Config.Prod.Backup.Size, p.Image, how)
	if err := write("README.md", []byte(readme)); err != nil {
		return nil, err
	}
	return files, nil
}

// exportProfile is the prod profile as exported: production requests, and
// the image that really runs (when the local cluster has one), pinned.
func (s *Session) exportProfile(ctx context.Context) (gateway.Profile, string, error) {
	p, err := gateway.Prod(s.Config)
	if err != nil {
		return p, "", err
	}
	if s.Connect() == nil {
		if d, err := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{}); err == nil {
			p.Image = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	img, how, err := s.Pin.Pin(ctx, p.Image)
	if err != nil {
		return p, "", err
	}
	p.Image = img
	return p, how, nil
}

// ExportHelmValues writes the prod profile for Microsoft's Helm chart into
// dir: values.yaml, the overlay/ kustomization for what the chart cannot
// express, and a README (see helmvalues.Export). No credential is written.
func (s *Session) ExportHelmValues(ctx context.Context, dir, chartVersion string) ([]string, error) {
	p, _, err := s.exportProfile(ctx)
	if err != nil {
		return nil, err
	}
	files, err := helmvalues.Export(p, chartVersion)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, helmvalues.OverlayDir), 0o700); err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := state.WriteFile(path, f.Data); err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.Name, ".sh") {
			// the post-renderer Helm runs
			if err := os.Chmod(path, 0o700); err != nil {
				return nil, err
			}
		}
		names = append(names, f.Name)
	}
	return names, nil
}
