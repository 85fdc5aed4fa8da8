package pipeline

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/settings"
)

const drillHost = "contoso.configuration.azure-api.net"

// promoted is a world whose gateway runs the prod profile.
func promoted(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	w.log.reset()
	return w
}

// snapshot is what the drill must leave as it found it: the record's
// ConfigMap and the gateway Deployment's spec.
type snapshot struct {
	record map[string]string
	spec   any
}

func (w *world) snapshot() snapshot {
	w.t.Helper()
	cm, err := w.kube.CoreV1().ConfigMaps("apim-gateway").Get(context.Background(), settings.RecordName("contoso-gw"), metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return snapshot{record: cm.Data, spec: w.deployment("contoso-gw").Spec}
}

// backupLog is a pod's log as the stand-in writes it: with the endpoint's
// host taken away, that it was unreachable and the pod started from the
// backup on its volume; else that the configuration service answered.
// seen records the pods that ran without the endpoint.
func (w *world) backupLog(seen *sync.Map) func(pod string) string {
	return func(pod string) string {
		p, err := w.kube.CoreV1().Pods("apim-gateway").Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		for _, a := range p.Spec.HostAliases {
			if a.IP == "127.0.0.1" && slices.Contains(a.Hostnames, drillHost) {
				seen.Store(pod, true)
				return `2026-12-01T08:59:01Z {"level":"WARN","msg":"configuration endpoint unreachable","error":"dial tcp 127.0.0.1:443: connect: connection refused"}
2026-12-01T08:59:01Z {"level":"WARN","msg":"started from configuration backup","revision":"7"}
2026-12-01T08:59:11Z {"level":"WARN","msg":"configuration endpoint unreachable","error":"dial tcp 127.0.0.1:443: connect: connection refused"}
`
			}
		}
		return `2026-12-01T08:59:30Z {"level":"INFO","msg":"configuration loaded; gateway ready","source":"configuration service","revision":"7"}` + "\n"
	}
}

func TestDrillOfflineRestartsEachPodFromItsBackupAndLeavesNoTrace(t *testing.T) {
	t.Parallel()
	w := promoted(t)
	before := w.snapshot()
	var seen sync.Map
	w.podLog = w.backupLog(&seen)
	res, err := w.session().DrillOffline(context.Background(), DrillOptions{})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, w.log.text())
	}
	if len(res.Pods) != 3 || !res.Restored || res.Endpoint != drillHost || res.Leftover || res.Traffic == nil || res.Traffic.Failed != 0 {
		t.Fatalf("drill: %+v\n%s", res, w.log.text())
	}
	for _, p := range res.Pods {
		if v, _ := seen.Load(p.Pod); v == nil {
			t.Errorf("pod %s ran with the endpoint's host resolvable", p.Pod)
		}
		if !p.FromBackup || p.Log != "from backup: started from configuration backup" || p.Link != "unreachable" || p.SmokeTotal == 0 || p.SmokePassed != p.SmokeTotal {
			t.Errorf("pod row %+v", p)
		}
	}
	log := w.log.text()
	for _, want := range []string{"cut done " + drillHost + " → 127.0.0.1", "restart done 3 pod(s) restarted without the endpoint", "smoke done every smoke call passed on each of 3 pod(s)",
		"restore done " + drillHost + " resolves as the cluster's DNS says again", "sync done 3/3 pod(s) ready with the endpoint back, link synced on 3 of 3 pod(s)"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in:\n%s", want, log)
		}
	}
	if strings.Contains(log, testCanary) {
		t.Fatal("the token is in the events")
	}
	after := w.snapshot()
	if !reflect.DeepEqual(before.record, after.record) {
		t.Errorf("the record changed:\n%v\n%v", before.record, after.record)
	}
	if !reflect.DeepEqual(before.spec, after.spec) {
		t.Errorf("the Deployment's spec changed:\n%+v\n%+v", before.spec, after.spec)
	}
	if st := w.session().Status(context.Background()); len(st.Drift) != 0 || len(res.Drift) != 0 {
		t.Errorf("drift after the drill: %+v %+v", st.Drift, res.Drift)
	}
}

func TestDrillOfflineRefusesWhatHasNoBackup(t *testing.T) {
	t.Parallel()
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		mustUp(t, w, UpOptions{})
		mark := len(w.kube.Actions())
		_, err := w.session().DrillOffline(context.Background(), DrillOptions{})
		var r *DrillRefusal
		if !errors.As(err, &r) || !strings.Contains(r.Error(), "dev profile") || !strings.Contains(r.Hint(), "apimdev promote") {
			t.Fatalf("drill on dev: %v", err)
		}
		if n := w.writes(mark); n != 0 {
			t.Errorf("a refused drill wrote %d time(s)", n)
		}
	})
	t.Run("prod without the backup", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.cfg.Prod.Backup.Enabled = false
		mustUp(t, w, UpOptions{})
		promote(t, w, PromoteOptions{To: "prod"})
		mark := len(w.kube.Actions())
		_, err := w.session().DrillOffline(context.Background(), DrillOptions{})
		var r *DrillRefusal
		if !errors.As(err, &r) || !strings.Contains(r.Hint(), "prod.backup.enabled=true") {
			t.Fatalf("drill without the backup: %v", err)
		}
		if n := w.writes(mark); n != 0 {
			t.Errorf("a refused drill wrote %d time(s)", n)
		}
	})
}

// A run that crashed after the cut left the drill on the Deployment: the
// next run says so, gives the endpoint back, then drills.
func TestDrillOfflineUndoesALeftOverDrillFirst(t *testing.T) {
	t.Parallel()
	w := promoted(t)
	before := w.snapshot()
	ctx := context.Background()
	crashed := &drillRun{s: w.session(), res: &DrillResult{}}
	if err := crashed.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := crashed.cut(ctx, crashed.s.Rep.Start(StepCut, "")); err != nil {
		t.Fatal(err)
	}
	if !drilled(w.deployment("contoso-gw"), drillHost) {
		t.Fatal("the cut left no mark")
	}
	w.log.reset()
	var seen sync.Map
	w.podLog = w.backupLog(&seen)
	res, err := w.session().DrillOffline(ctx, DrillOptions{})
	if err != nil {
		t.Fatalf("drill after a crash: %v\n%s", err, w.log.text())
	}
	log := w.log.text()
	if !res.Leftover || !strings.Contains(log, "restore warn Deployment apim-gateway/contoso-gw still carries a drill an earlier run left") ||
		!strings.Contains(log, "restore start undoing the drill left by an earlier run") || !res.Restored {
		t.Fatalf("left-over drill: %+v\n%s", res, log)
	}
	if after := w.snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the drill after a crash left a trace")
	}
}

// Ctrl-C while the pods restart without the endpoint: it is given back
// before DrillOffline returns.
func TestDrillOfflineInterruptedGivesTheEndpointBack(t *testing.T) {
	t.Parallel()
	w := promoted(t)
	before := w.snapshot()
	w.kube.Hold("apim-gateway", "contoso-gw", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			d, err := w.kube.AppsV1().Deployments("apim-gateway").Get(context.Background(), "contoso-gw", metav1.GetOptions{})
			if err == nil && drilled(d, drillHost) {
				w.kube.Hold("apim-gateway", "contoso-gw", false)
				cancel() // Ctrl-C with the new pods not ready
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	res, err := w.session().DrillOffline(ctx, DrillOptions{})
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted drill: %v\n%s", err, w.log.text())
	}
	if res == nil || !res.Restored || drilled(w.deployment("contoso-gw"), drillHost) {
		t.Fatalf("the endpoint was not given back: %+v\n%s", res, w.log.text())
	}
	if log := w.log.text(); !strings.Contains(log, "interrupted: giving the configuration endpoint back before exiting") || !strings.Contains(log, "restore done") {
		t.Errorf("interrupted drill:\n%s", log)
	}
	if after := w.snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the interrupted drill left a trace")
	}
}

// An empty backup (issue #164): the new pods never get ready; the drill
// says what their logs said, fails, and gives the endpoint back.
func TestDrillOfflineWithAnEmptyBackupFailsAndGivesTheEndpointBack(t *testing.T) {
	t.Parallel()
	w := promoted(t)
	w.kube.Hold("apim-gateway", "contoso-gw", true)
	w.podLog = func(string) string {
		w.kube.Hold("apim-gateway", "contoso-gw", false) // the restore's pods start with the endpoint
		return "2026-12-01T08:59:02Z [Error] 2026-12-01T08:59:02.000 [ConfigInitialSyncFailed], message: Microsoft.Azure.Apim.Configuration.ConfigurationNotFoundException: /apim/config/snapshot.lock.json, source: Microsoft.Azure.Apim.Configuration.ServiceConfigurationSource\n"
	}
	res, err := w.session().DrillOffline(context.Background(), DrillOptions{})
	var fs *FailedStep
	if !errors.As(err, &fs) || fs.Step != StepRestart {
		t.Fatalf("drill with an empty backup: %v\n%s", err, w.log.text())
	}
	if res == nil || len(res.Pods) == 0 || res.Pods[0].FromBackup || !strings.Contains(res.Pods[0].Log, "ConfigurationNotFoundException") {
		t.Fatalf("pods: %+v", res)
	}
	if !res.Restored || drilled(w.deployment("contoso-gw"), drillHost) {
		t.Fatalf("the endpoint was not given back:\n%s", w.log.text())
	}
}

func TestBackupWarningNamesTheKnownProblem(t *testing.T) {
	t.Parallel()
	if w := backupWarning("mcr.microsoft.com/azure-api-management/gateway:2.12.1"); !strings.Contains(w, "issues/418") {
		t.Errorf("2.12.1: %q", w)
	}
	if w := backupWarning("mcr.microsoft.com/azure-api-management/gateway:2.11.1"); w != "" {
		t.Errorf("2.11.1 has no known backup problem: %q", w)
	}
	if h := endpointHost("https://standin-config.standin-config.svc.cluster.local:8443/"); h != "standin-config.standin-config.svc.cluster.local" {
		t.Errorf("host %q", h)
	}
}
