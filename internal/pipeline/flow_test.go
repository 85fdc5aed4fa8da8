package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/settings"
	"github.com/apimdev/apimdev/internal/token"
)

func (w *world) deployment(name string) *appsv1.Deployment {
	w.t.Helper()
	d, err := w.kube.AppsV1().Deployments("apim-gateway").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("Deployment %s: %v", name, err)
	}
	return d
}

func (w *world) exists(kind, name string) bool {
	ctx, ns := context.Background(), "apim-gateway"
	var err error
	switch kind {
	case "PodDisruptionBudget":
		_, err = w.kube.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	case "PersistentVolumeClaim":
		_, err = w.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	case "ServiceAccount":
		_, err = w.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	case "Deployment":
		_, err = w.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	case "ConfigMap":
		_, err = w.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		w.t.Fatalf("exists: kind %s", kind)
	}
	return err == nil
}

// writes counts the real (not dry-run) writes the cluster took since mark.
func (w *world) writes(since int) int {
	n := 0
	for _, a := range w.kube.Actions()[since:] {
		switch x := a.(type) {
		case k8stesting.PatchActionImpl:
			if len(x.PatchOptions.DryRun) == 0 {
				n++
			}
		case k8stesting.CreateActionImpl, k8stesting.UpdateActionImpl, k8stesting.DeleteActionImpl:
			n++
		}
	}
	return n
}

func mustUp(t *testing.T, w *world, o UpOptions) *UpResult {
	t.Helper()
	res, err := w.up(o)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	return res
}

func TestUpCreatesTheGatewayThenAReRunChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	res := mustUp(t, w, UpOptions{})
	if !res.Created || res.Profile != "dev" || len(res.Smoke) != 2 {
		t.Fatalf("first up: %+v", res)
	}
	log := w.log.text()
	for _, want := range []string{"preflight done 8 checks passed", "cluster done created apimdev", "image done loaded into the node", "deploy progress Deployment/contoso-gw created",
		"deploy done apim-gateway/contoso-gw ready, dev profile (6 object(s) changed, 0 unchanged)", "smoke done 2 call(s) passed"} {
		if !strings.Contains(log, want) {
			t.Errorf("first up lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, testCanary) {
		t.Fatalf("the token is in the events:\n%s", log)
	}
	// The cluster records what was applied, and the state directory keeps a copy.
	rec, err := w.session().ReadRecord(context.Background())
	if err != nil || rec == nil || rec.Profile != "dev" || rec.Version != "test" || rec.Spec.Image != config.DefaultImage || rec.Config.Gateway.Endpoint != w.cfg.Gateway.Endpoint {
		t.Fatalf("record: %+v %v", rec, err)
	}
	if b, ok := w.files.CachedRecord(); !ok || strings.Contains(string(b), testCanary) {
		t.Fatalf("cached record: %v (the token must never be in it)", ok)
	}
	cm, _ := w.kube.CoreV1().ConfigMaps("apim-gateway").Get(context.Background(), settings.RecordName("contoso-gw"), metav1.GetOptions{})
	if strings.Contains(cm.Data[settings.RecordKey], testCanary) || cm.Data["profile"] != "dev" {
		t.Fatalf("record ConfigMap: %v", cm.Data)
	}

	w.log.reset()
	mark := len(w.kube.Actions())
	res = mustUp(t, w, UpOptions{})
	if res.Created || w.writes(mark) != 0 {
		t.Fatalf("the re-run wrote %d time(s): %+v", w.writes(mark), w.kube.Actions()[mark:])
	}
	if !strings.Contains(w.log.text(), "(0 object(s) changed, 6 unchanged)") || !strings.Contains(w.log.text(), "it records the dev profile") {
		t.Errorf("re-run:\n%s", w.log.text())
	}
}

// Every step's failure is reported once, by the step, names it, and a
// re-run with the cause gone completes without duplicates.
func TestUpResumesAfterEachStepFails(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		step   string
		break_ func(w *world)
		fix    func(w *world)
	}{
		{StepPreflight, func(w *world) { w.docker.SetDown(true) }, func(w *world) { w.docker.SetDown(false) }},
		{StepCluster, func(w *world) { w.kind.fail["Ensure absent"] = errors.New("kind could not create the node") }, func(w *world) { delete(w.kind.fail, "Ensure absent") }},
		{StepImage, func(w *world) { w.kind.fail["LoadImage "+config.DefaultImage] = errors.New("ctr import failed") }, func(w *world) { delete(w.kind.fail, "LoadImage "+config.DefaultImage) }},
		{StepDeploy, func(w *world) {
			w.kube.Hold("apim-gateway", "contoso-gw", true)
			w.kube.Hold("apim-gateway", "contoso-gw", true)
		}, func(w *world) {
			w.kube.Hold("apim-gateway", "contoso-gw", false)
		}},
		{StepSmoke, func(w *world) { w.pods.setBroken(true) }, func(w *world) { w.pods.setBroken(false) }},
	} {
		t.Run(tt.step, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tt.break_(w)
			_, err := w.up(UpOptions{})
			var fs *FailedStep
			if !errors.As(err, &fs) || fs.Step != tt.step {
				t.Fatalf("failed at %v, want %s\n%s", err, tt.step, w.log.text())
			}
			if n := w.log.failures(); n != 1 {
				t.Errorf("the failure was reported %d times:\n%s", n, w.log.text())
			}
			tt.fix(w)
			if tt.step == StepDeploy {
				// The pods of a held Deployment get ready on its next roll.
				_ = w.session().restartPods(context.Background(), gateway.Dev(w.cfg))
			}
			w.log.reset()
			res := mustUp(t, w, UpOptions{})
			if res.Profile != "dev" {
				t.Fatalf("resumed up: %+v", res)
			}
			if n := w.kind.asked("Ensure absent"); n > 1 && tt.step != StepCluster || n > 2 {
				t.Errorf("the cluster was created %d times", n)
			}
			ds, _ := w.kube.AppsV1().Deployments("apim-gateway").List(context.Background(), metav1.ListOptions{})
			if len(ds.Items) != 1 {
				t.Errorf("%d Deployments after the resume", len(ds.Items))
			}
		})
	}
}

func TestUpWithoutATokenKeepsTheClustersOrSaysHowToGetOne(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, err := w.up(UpOptions{NoToken: true})
	if err == nil || !strings.Contains(err.Error(), "no token") || !strings.Contains(w.log.text(), "apimdev up --demo") || w.kind.asked("Ensure") != 0 {
		t.Fatalf("no token on a new machine: %v\n%s", err, w.log.text())
	}
	mustUp(t, w, UpOptions{})
	w.log.reset()
	mustUp(t, w, UpOptions{NoToken: true})
	if !strings.Contains(w.log.text(), "token: the one in Secret apim-gateway/contoso-gw-token") {
		t.Fatalf("re-run without a token:\n%s", w.log.text())
	}
}

func promote(t *testing.T, w *world, o PromoteOptions) *PromoteResult {
	t.Helper()
	res, err := w.session().Promote(context.Background(), o)
	if err != nil {
		t.Fatalf("promote %s: %v\n%s", o.To, err, w.log.text())
	}
	return res
}

// The lifecycle of issue 12: up, promote, up again (still prod, nothing
// orphaned), promote --to dev (prod's extras pruned), up again (dev).
func TestUpAfterPromoteStaysProdAndDemotionPrunes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	res := promote(t, w, PromoteOptions{To: "prod"})
	for _, c := range res.Checks {
		if !c.OK {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
	}
	if res.Image != "mcr.microsoft.com/azure-api-management/gateway:2.11.1" || res.FitNote == "" || res.Traffic == nil || res.Traffic.Failed != 0 {
		t.Fatalf("promote: %+v", res)
	}
	if !strings.Contains(res.Diff, "+ PodDisruptionBudget/contoso-gw") || !strings.Contains(res.Diff, "-   replicas: 1") {
		t.Fatalf("promote's plan:\n%s", res.Diff)
	}
	if w.kind.asked("Exec sh -c mkdir") != 1 {
		t.Errorf("the backup volume was not made writable: %v", w.kind.calls)
	}
	d := w.deployment("contoso-gw")
	requests := d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String()

	// up again, as after a reboot: it stays prod and changes nothing.
	w.log.reset()
	mark := len(w.kube.Actions())
	up := mustUp(t, w, UpOptions{})
	if up.Profile != "prod" || w.writes(mark) != 0 {
		t.Fatalf("up after promote: profile %s, %d write(s)\n%s", up.Profile, w.writes(mark), w.log.text())
	}
	d = w.deployment("contoso-gw")
	if *d.Spec.Replicas != 3 || len(d.Spec.Template.Spec.Volumes) != 1 || d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String() != requests {
		t.Fatalf("up after promote changed the gateway: replicas %d, volumes %d", *d.Spec.Replicas, len(d.Spec.Template.Spec.Volumes))
	}
	if w.kind.asked("LoadImage prom/statsd-exporter") != 2 {
		t.Errorf("up after promote did not load the statsd exporter's image: %v", w.kind.calls)
	}

	// Back to dev: what only prod has goes, in one place.
	back := promote(t, w, PromoteOptions{To: "dev"})
	if *w.deployment("contoso-gw").Spec.Replicas != 1 || back.Profile != "dev" {
		t.Fatalf("demotion: %+v", back)
	}
	for _, o := range [][2]string{{"PodDisruptionBudget", "contoso-gw"}, {"PersistentVolumeClaim", "contoso-gw-config-backup"}, {"Deployment", "contoso-gw-statsd"}, {"ServiceAccount", "contoso-gw"}} {
		if w.exists(o[0], o[1]) {
			t.Errorf("%s/%s survived the demotion", o[0], o[1])
		}
	}
	w.log.reset()
	if up := mustUp(t, w, UpOptions{}); up.Profile != "dev" {
		t.Fatalf("up after demotion: %s", up.Profile)
	}
}

// Someone scales the gateway by hand: status shows it; up without --yes
// and without a terminal changes nothing and says why; up --yes puts the
// record back.
func TestDriftIsShownAndUpYesRestoresTheRecord(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	d := w.deployment("contoso-gw")
	d.Spec.Replicas = ptr.To[int32](5)
	if _, err := w.kube.AppsV1().Deployments("apim-gateway").Update(context.Background(), d, metav1.UpdateOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	w.kind.state = cluster.ClusterOurs
	st := w.session().Status(context.Background())
	if st.Profile != "prod" || len(st.Drift) != 1 || st.Drift[0].Ref() != "Deployment/contoso-gw" || !strings.Contains(strings.Join(st.Drift[0].Lines, "\n"), "-   replicas: 5") {
		t.Fatalf("status drift: %+v", st.Drift)
	}
	_, err := w.up(UpOptions{})
	var de *DeclinedError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "changed by hand") || *w.deployment("contoso-gw").Spec.Replicas != 5 {
		t.Fatalf("up without --yes: %v", err)
	}
	asked := ""
	if _, err := w.up(UpOptions{Confirm: func(diff string) bool { asked = diff; return false }}); !errors.As(err, &de) || !strings.Contains(asked, "+   replicas: 3") {
		t.Fatalf("up asked %q: %v", asked, err)
	}
	mustUp(t, w, UpOptions{Yes: true})
	if *w.deployment("contoso-gw").Spec.Replicas != 3 {
		t.Fatal("up --yes did not restore 3 replicas")
	}
	if st := w.session().Status(context.Background()); len(st.Drift) != 0 {
		t.Fatalf("drift after up --yes: %+v", st.Drift)
	}
}

// A flag that asks for something other than what runs is a question too.
func TestAConflictingFlagIsAskedFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	w.asks = func(c *config.Config) { c.Gateway.Image = "example.azurecr.io/gateway:2.12.0" }
	_, err := w.up(UpOptions{})
	var de *DeclinedError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "differs from these settings (gateway.image "+config.DefaultImage+" → example.azurecr.io/gateway:2.12.0)") {
		t.Fatalf("without --yes: %v", err)
	}
	if img := w.deployment("contoso-gw").Spec.Template.Spec.Containers[0].Image; img != config.DefaultImage {
		t.Fatalf("the image changed without a yes: %s", img)
	}
	mustUp(t, w, UpOptions{Yes: true})
	if img := w.deployment("contoso-gw").Spec.Template.Spec.Containers[0].Image; img != "example.azurecr.io/gateway:2.12.0" {
		t.Fatalf("with --yes: %s", img)
	}
	rec, _ := w.session().ReadRecord(context.Background())
	if rec.Config.Gateway.Image != "example.azurecr.io/gateway:2.12.0" {
		t.Fatalf("the record did not follow: %s", rec.Config.Gateway.Image)
	}
	// Another gateway's name is another gateway: deployed beside the first,
	// which stays as it is, and said so.
	w.asks = func(c *config.Config) { c.Gateway.Name = "other-gw" }
	w.log.reset()
	mustUp(t, w, UpOptions{})
	if !strings.Contains(w.log.text(), "also runs gateway apim-gateway/contoso-gw") || !w.exists("Deployment", "other-gw") || !w.exists("Deployment", "contoso-gw") {
		t.Fatalf("a second gateway:\n%s", w.log.text())
	}
}

// A lost state directory: the cluster's record is the truth.
func TestTheClusterRecordStandsInForALostStateDirectory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	w.files.ForgetRecord()
	w.kind.state = cluster.ClusterOurs
	s := w.session()
	s.setConfig(config.Default()) // nothing known but the defaults
	st := s.Status(context.Background())
	if st.Profile != "prod" || st.Gateway != "contoso-gw" || st.Desired != 3 {
		t.Fatalf("status from the cluster's record: %+v", st)
	}
	if _, ok := w.files.CachedRecord(); !ok {
		t.Fatal("the state directory's copy was not made again")
	}
}

func TestRotateKeepsTheProfileAndDownRemovesEverything(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	newTok, _ := token.Parse("GatewayKey contoso-gw&202701151200&TkVXLXRva2VuLWZvci1yb3RhdGlvbg==")
	res, err := w.session().RotateToken(context.Background(), newTok, PromoteOptions{})
	if err != nil || res.Profile != "prod" || res.Traffic.Failed != 0 {
		t.Fatalf("rotate: %+v %v\n%s", res, err, w.log.text())
	}
	if d := w.deployment("contoso-gw"); d.Spec.Template.Annotations[gateway.RestartedAtKey] == "" || *d.Spec.Replicas != 3 {
		t.Fatalf("rotation did not restart the prod pods: %v", d.Spec.Template.Annotations)
	}
	if got, _ := w.session().ClusterToken(context.Background()); got.SecretValue() != newTok.SecretValue() {
		t.Fatal("the Secret does not hold the new token")
	}
	w.kind.state = cluster.ClusterOurs
	if err := w.session().Down(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, o := range [][2]string{{"Deployment", "contoso-gw"}, {"Deployment", "contoso-gw-statsd"}, {"PodDisruptionBudget", "contoso-gw"}, {"ConfigMap", settings.RecordName("contoso-gw")}} {
		if w.exists(o[0], o[1]) {
			t.Errorf("down --keep-cluster left %s/%s", o[0], o[1])
		}
	}
	if err := w.session().Down(context.Background(), false); err != nil || w.kind.asked("Delete") != 1 {
		t.Fatalf("down: %v %v", err, w.kind.calls)
	}
}

func TestUpAfterTheDemoStaysTheDemo(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.cfg.Gateway.Endpoint = "standin-config.apimdev-demo.svc.cluster.local:8443"
	w.cfg.Gateway.Image = "apimdev-e2e/standin-gateway:2.11.1-standin"
	ws := &Workshop{Demo: true}
	res := mustUp(t, w, UpOptions{NoToken: true, Workshop: ws})
	if ws.Key == "" || len(res.Smoke) != 4 {
		t.Fatalf("demo up: key %q, %d smoke call(s)\n%s", ws.Key, len(res.Smoke), w.log.text())
	}
	// A plain up, with nothing said about the demo: the session resolves
	// to the recorded demo (the CLI then runs the demo's steps).
	w.cfg = config.Default()
	s := w.session()
	if err := s.Resolve(context.Background()); err != nil || !s.IsDemo() {
		t.Fatalf("resolved %v, demo %v", err, s.IsDemo())
	}
	w.cfg = s.Config
	w.log.reset()
	res = mustUp(t, w, UpOptions{NoToken: true, Workshop: &Workshop{Demo: true}})
	if res.Profile != "dev" || !strings.Contains(w.log.text(), "0 object(s) changed") {
		t.Fatalf("second demo up:\n%s", w.log.text())
	}
}

// kind's node image is not here: one built on this machine stands in.
func TestUpUsesANodeImageBuiltHereWhenKindsIsMissing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.docker.absent = map[string]bool{cluster.DefaultNodeImage: true}
	w.docker.buildNode(t, "apimdev/kind-node:v1.34.4")
	mustUp(t, w, UpOptions{})
	if w.kind.NodeImage() != "apimdev/kind-node:v1.34.4" || !strings.Contains(w.log.text(), "using apimdev/kind-node:v1.34.4, built here") {
		t.Fatalf("node image %s:\n%s", w.kind.NodeImage(), w.log.text())
	}
}

// A node image that cannot be pulled: the registry is named with the
// engine's reason and the three ways out, and nothing is created.
func TestANodeImageThatCannotBePulledStopsUpBeforeAnythingIsMade(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.docker.absent = map[string]bool{cluster.DefaultNodeImage: true}
	_, err := w.up(UpOptions{})
	var pe *NodeImagePullError
	if !errors.As(err, &pe) || pe.Registry != "registry-1.docker.io (Docker Hub)" || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("%v", err)
	}
	for _, way := range []string{"--kit", "--node-image NAME", "apimdev node-image build", "nothing was created"} {
		if !strings.Contains(pe.Hint(), way) {
			t.Errorf("the hint lacks %q: %s", way, pe.Hint())
		}
	}
	if n := w.kind.asked("Ensure"); n != 0 {
		t.Fatalf("the cluster was asked for %d time(s)", n)
	}
}
