package gateway

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KnownVersion is a gateway release apimdev knows of: its official chart and
// the problems users reported against it in public.
type KnownVersion struct {
	Version  string
	Chart    string // the official Helm chart that ships it
	Problems []KnownProblem
}

// KnownProblem is one publicly reported problem of a version.
type KnownProblem struct {
	// Backup says it concerns the configuration backup, which the prod
	// profile turns on: promote then says so louder.
	Backup  bool
	Summary string
	Source  string
}

// knownVersions are the releases of the public chart index (2026-12) and
// what the gateway's public issue tracker reports against them.
var knownVersions = []KnownVersion{
	{Version: "2.11.1", Chart: "1.15.1", Problems: []KnownProblem{{Summary: "memory growth over days of traffic reported", Source: "https://github.com/Azure/api-management-self-hosted-gateway/issues/401"}}},
	{Version: "2.11.2", Chart: "1.15.2"},
	{Version: "2.12.0", Chart: "1.16.0", Problems: []KnownProblem{{Backup: true, Summary: "configuration backup restore reported broken: a pod that starts while the configuration endpoint is unreachable does not start from its backup (2.11.x works)", Source: "https://github.com/Azure/api-management-self-hosted-gateway/issues/418"}}},
	{Version: "2.12.1", Chart: "1.16.1", Problems: []KnownProblem{{Backup: true, Summary: "configuration backup restore reported broken: a pod that starts while the configuration endpoint is unreachable does not start from its backup (2.11.x works)", Source: "https://github.com/Azure/api-management-self-hosted-gateway/issues/418"}}},
}

// memoryFixed is the release that fixed the memory leak users reported
// before it (issue #310).
const memoryFixed = "2.8.0"

var versionRE = regexp.MustCompile(`(?:^|[:@ ])v?(\d+)\.(\d+)\.(\d+)(?:$|[^0-9.])`)

// VersionOf is the X.Y.Z an image reference (or a pin's explanation) names,
// "" when it names none (a floating tag such as v2, a digest).
func VersionOf(ref string) string {
	m := versionRE.FindStringSubmatch(ref)
	if m == nil {
		return ""
	}
	return m[1] + "." + m[2] + "." + m[3]
}

// ProblemsOf are the known problems of a version, including those of every
// version before a fix.
func ProblemsOf(version string) []KnownProblem {
	if version == "" {
		return nil
	}
	var out []KnownProblem
	for _, k := range knownVersions {
		if k.Version == version {
			out = append(out, k.Problems...)
		}
	}
	if versionLess(version, memoryFixed) {
		out = append(out, KnownProblem{Summary: "memory leak fixed in " + memoryFixed, Source: "https://github.com/Azure/api-management-self-hosted-gateway/issues/310"})
	}
	return out
}

// VersionWarning is what promote says of the version it pins, "" when
// nothing is known against it. backup says the profile restores from a
// backup.
func VersionWarning(version string, backup bool) string {
	var lines []string
	for _, p := range ProblemsOf(version) {
		l := p.Summary + " (" + p.Source + ")"
		if p.Backup && backup {
			l += ": the prod profile relies on the backup; pin 2.11.x with --image-tag until it is fixed, or accept it"
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("gateway %s has known problems: %s", version, strings.Join(lines, "; "))
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range 3 {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}
