package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/traffic"
)

func TestPrintDrill(t *testing.T) {
	res := &pipeline.DrillResult{Profile: "prod", Image: "gw:2.12.1", Endpoint: "contoso.configuration.azure-api.net", VersionWarning: "gateway 2.12.1 has a known backup problem",
		Leftover: true, RestartSecs: 31.2, RestoreSecs: 29.8, Restored: true, Synced: "3/3 pod(s) ready with the endpoint back",
		Traffic: &traffic.Stats{Sent: 1200, Failed: 0, P50MS: 2.5, P99MS: 9.1},
		Pods: []pipeline.DrillPod{
			{Pod: "contoso-gw-7d9-a", ReadyAfter: 4200 * time.Millisecond, ReadySecs: 4.2, FromBackup: true, Log: "started from configuration backup", SmokePassed: 3, SmokeTotal: 3},
			{Pod: "contoso-gw-7d9-b", SmokePassed: 2, SmokeTotal: 3, SmokeFailed: []string{"GET echo: 500"}, Log: "nothing about a backup in its log"},
		}}
	var b bytes.Buffer
	printDrill(&b, res)
	out := b.String()
	for _, want := range []string{"endpoint contoso.configuration.azure-api.net taken away", "version: gateway 2.12.1", "undone first",
		"contoso-gw-7d9-a                 4.2s     yes          3/3", "contoso-gw-7d9-b                 -        no           2/3", "  failed: GET echo: 500",
		"traffic during the drill: 1200 sent, 0 failed", "endpoint given back: 3/3 pod(s) ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	res.Restored = false
	b.Reset()
	printDrill(&b, res)
	if !strings.Contains(b.String(), "the endpoint was NOT given back") {
		t.Errorf("not restored:\n%s", b.String())
	}
}

func TestDrillExitCodes(t *testing.T) {
	if c := exitOf(fmt.Errorf("restart: %w", context.Canceled)); c != ExitInterrupted {
		t.Errorf("interrupted: %d", c)
	}
	if c := exitOf(errors.New("pods not ready")); c != ExitFailure {
		t.Errorf("failed: %d", c)
	}
}
