package archtest

import (
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/apimdev/apimdev/internal/"

// rule is one import rule, written from the sentence of the package's
// doc.go that states it. Packages are named relative to internal/.
type rule struct {
	pkg      string
	sentence string // as doc.go says it, which the test checks it still does
	// notImport are packages pkg must not depend on, directly or through
	// another package.
	notImport []string
	// only, when onlyRule is set, are the only apimdev packages pkg may
	// import directly (none when empty).
	onlyRule bool
	only     []string
}

var rules = []rule{
	{pkg: "cluster", sentence: "It must not import gateway, forward, cli or tui.", notImport: []string{"gateway", "forward", "cli", "tui"}},
	{pkg: "config", sentence: "This package must not import the cluster, gateway, forward or cli packages.", notImport: []string{"cluster", "gateway", "forward", "cli"}},
	{pkg: "demo", sentence: "It must not import cli, tui or pipeline.", notImport: []string{"cli", "tui", "pipeline"}},
	{pkg: "diagnose", sentence: "It must not import cli, pipeline or tui.", notImport: []string{"cli", "pipeline", "tui"}},
	{pkg: "events", sentence: "This package imports nothing from the rest of apimdev.", onlyRule: true},
	{pkg: "forward", sentence: "It imports nothing from the rest of apimdev except ports.", onlyRule: true, only: []string{"ports"}},
	{pkg: "gateway", sentence: "It must not import cluster, forward, cli or tui.", notImport: []string{"cluster", "forward", "cli", "tui"}},
	{pkg: "imagetar", sentence: "It imports nothing from the rest of apimdev.", onlyRule: true},
	{pkg: "gwlink", sentence: "It imports nothing from the rest of apimdev except podlogs.", onlyRule: true, only: []string{"podlogs"}},
	{pkg: "helmvalues", sentence: "It must not import cli, tui or pipeline.", notImport: []string{"cli", "tui", "pipeline"}},
	{pkg: "kit", sentence: "must not import cli, tui or pipeline.", notImport: []string{"cli", "tui", "pipeline"}},
	{pkg: "labs", sentence: "It must not import cli, tui or pipeline.", notImport: []string{"cli", "tui", "pipeline"}},
	{pkg: "relay", sentence: "It must not import cli, tui, pipeline, cluster or gateway", notImport: []string{"cli", "tui", "pipeline", "cluster", "gateway"}},
	{pkg: "settings", sentence: "It imports nothing from the rest of apimdev except config and gateway", onlyRule: true, only: []string{"config", "gateway"}},
	{pkg: "smoke", sentence: "It imports nothing from the rest of apimdev:", onlyRule: true},
	{pkg: "testproc", sentence: "It imports nothing from the rest of apimdev, so that state's own tests can use it", onlyRule: true},
	{pkg: "token", sentence: "This package must not import anything from the rest of apimdev.", onlyRule: true},
	{pkg: "tui", sentence: "It must not import cli.", notImport: []string{"cli"}},
}

// graph maps each apimdev package (relative to internal/) to the apimdev
// packages it imports directly.
type graph map[string][]string

// violations are the rules g breaks, one line each naming the package and
// the import.
func violations(g graph, rules []rule) []string {
	var out []string
	for _, r := range rules {
		if _, ok := g[r.pkg]; !ok {
			out = append(out, r.pkg+": no such package")
			continue
		}
		for _, dep := range deps(g, r.pkg) {
			if slices.Contains(r.notImport, dep) {
				out = append(out, r.pkg+" imports "+dep+via(g, r.pkg, dep)+", which its doc.go forbids")
			}
		}
		if !r.onlyRule {
			continue
		}
		for _, imp := range g[r.pkg] {
			if !slices.Contains(r.only, imp) {
				out = append(out, r.pkg+" imports "+imp+", which its doc.go forbids")
			}
		}
	}
	return out
}

// deps are the packages pkg depends on, directly or not, sorted.
func deps(g graph, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range g[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// via says through what pkg reaches dep when it does not import it directly.
func via(g graph, pkg, dep string) string {
	if slices.Contains(g[pkg], dep) {
		return ""
	}
	for _, d := range g[pkg] {
		if slices.Contains(deps(g, d), dep) {
			return " (through " + d + ")"
		}
	}
	return ""
}

// load reads the apimdev packages under internal/ and their imports (not
// their tests'), for every operating system apimdev builds on.
func load(t *testing.T) graph {
	t.Helper()
	g := graph{}
	root := ".."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		for _, goos := range []string{"linux", "darwin", "windows"} {
			ctx := build.Default
			ctx.GOOS = goos
			p, err := ctx.ImportDir(path, 0)
			if err != nil {
				if _, ok := err.(*build.NoGoError); ok {
					continue
				}
				return err
			}
			if _, ok := g[name]; !ok {
				g[name] = nil
			}
			for _, imp := range p.Imports {
				if dep, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(g[name], dep) {
					g[name] = append(g[name], dep)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPackagesImportOnlyWhatTheirDocAllows(t *testing.T) {
	g := load(t)
	if len(g["cli"]) == 0 || !slices.Contains(deps(g, "tui"), "pipeline") {
		t.Fatalf("the import graph was not read (cli imports %v)", g["cli"])
	}
	for _, v := range violations(g, rules) {
		t.Error(v)
	}
}

// forbidding matches the sentences that state an import rule.
var forbidding = regexp.MustCompile(`must not import|imports nothing`)

// Each rule's sentence is still in its package's doc.go, and every doc.go
// sentence that states a rule has its row.
func TestRulesAreTheDocsSentences(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("..", "*", "doc.go"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no doc.go found: %v", err)
	}
	has := map[string]rule{}
	for _, r := range rules {
		has[r.pkg] = r
	}
	for _, doc := range docs {
		pkg := filepath.Base(filepath.Dir(doc))
		f, err := parser.ParseFile(token.NewFileSet(), doc, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(f.Doc.Text()), " ")
		r, ok := has[pkg]
		switch {
		case ok && !strings.Contains(text, r.sentence):
			t.Errorf("%s/doc.go no longer says %q: change the rule with it", pkg, r.sentence)
		case !ok && forbidding.MatchString(text):
			t.Errorf("%s/doc.go states an import rule (%q) that has no row in rules", pkg, forbidding.FindString(text))
		}
		delete(has, pkg)
	}
	for pkg := range has {
		t.Errorf("rule for %s, which has no doc.go", pkg)
	}
}

// The check can fail: a sample graph that breaks each kind of rule.
func TestViolationsAreNamed(t *testing.T) {
	g := graph{
		"gateway": {"config", "kit"}, // kit reaches cluster
		"kit":     {"cluster"},
		"cluster": nil,
		"config":  {"token"},
		"token":   nil,
		"smoke":   {"config"},
		"forward": {"ports", "token"},
		"ports":   nil,
	}
	rs := []rule{
		{pkg: "gateway", notImport: []string{"cluster", "cli"}},
		{pkg: "smoke", onlyRule: true, only: []string{"config"}}, // config's own token is config's business
		{pkg: "forward", onlyRule: true, only: []string{"ports"}},
		{pkg: "token", onlyRule: true},
		{pkg: "tui", notImport: []string{"cli"}},
	}
	got := violations(g, rs)
	want := []string{
		"gateway imports cluster (through kit), which its doc.go forbids",
		"forward imports token, which its doc.go forbids",
		"tui: no such package",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v := violations(load(t), []rule{{pkg: "tui", notImport: []string{"pipeline"}}}); len(v) != 1 || v[0] != "tui imports pipeline, which its doc.go forbids" {
		t.Fatalf("the real graph breaks a rule made to be broken: %v", v)
	}
}

// testOnly are the packages for tests: no package's own code imports them
// (the graph holds no _test.go file's imports).
var testOnly = []string{"kubefake", "enginefake", "testdir", "kit/kittest", "testproc"}

func TestTestPackagesStayInTests(t *testing.T) {
	g := load(t)
	for pkg, imports := range g {
		for _, imp := range imports {
			if slices.Contains(testOnly, imp) {
				t.Errorf("%s imports %s, which is for tests only", pkg, imp)
			}
		}
	}
	for _, p := range testOnly {
		if _, ok := g[p]; !ok {
			t.Errorf("%s: no such package", p)
		}
	}
}

// The unit tests also run as Windows programs under Wine, where t.TempDir's
// own cleanup fails (testdir says why): they make directories with
// testdir.New.
func TestUnitTestsUseTestdir(t *testing.T) {
	var bad []string
	for _, root := range []string{"..", filepath.Join("..", "..", "scripts")} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") || strings.Contains(path, "archtest") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.Contains(string(b), "t.TempDir()") || strings.Contains(string(b), "b.TempDir()") {
				bad = append(bad, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("tests that use TempDir (fails under Wine; use testdir.New): %v", bad)
	}
}
