package cli

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The documentation is README.md and docs/*.md (and the other markdown files
// of the repository, which link into them). Every relative link in it
// must lead somewhere (and to a heading, for #anchors), every `apimdev …`
// command it shows must be one of the command tree, and every flag written
// after such a command must be one that command takes.

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// readmeMaxLines is the README's budget: what apimdev is, the first two
// commands, install, the commands most people use and links; everything
// else is a page in docs/.
const readmeMaxLines = 250

func TestDocs(t *testing.T) {
	fsys := os.DirFS(repoRoot)
	files, err := docFiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	c := newDocChecker(fsys, (&app{getenv: func(string) string { return "" }}).rootCommand())
	for _, f := range files {
		c.checkFile(f)
	}
	if ps := c.sorted(); len(ps) > 0 {
		t.Errorf("%d problem(s) in the docs:\n%s", len(ps), strings.Join(ps, "\n"))
	}
	// The check must have had something to check: a parser that finds
	// nothing passes every document.
	if c.commands < 50 || c.links < 20 {
		t.Errorf("checked %d command(s) and %d link(s) in %d file(s): the docs' commands or links were not found", c.commands, c.links, len(files))
	}
	b, err := fs.ReadFile(fsys, "README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move the details to a page in docs/ and link it", n, readmeMaxLines)
	}
	t.Logf("%d file(s): %d command(s), %d relative link(s) checked", len(files), c.commands, c.links)
}

// A sample with one of each mistake, and as many correct uses: the checker
// reports every mistake, with its file and line, and nothing else.
func TestDocCheckerFindsEveryProblem(t *testing.T) {
	fsys := fstest.MapFS{
		"README.md": {Data: []byte("# Sample\n\n" +
			"See [the page](docs/page.md), [its part](docs/page.md#a-part-and-more), [here](#sample) and [a dir](docs).\n" +
			"A [lost page](docs/lost.md) and a [lost part](docs/page.md#no-such-part), [a lost here](#nowhere).\n" +
			"Run `apimdev up --demo --detach`, then `apimdev kit create -o kit.tar --sign KEY` and `apimdev logs [-f]`.\n" +
			"Not a command: `apimdev.yaml`, `~/.config/apimdev`, the cluster `apimdev (ours)`.\n" +
			"Wrong: `apimdev upp --demo`, `apimdev kit frobnicate`, `apimdev up --no-such-flag`, `apimdev status -q`.\n" +
			"A span over two lines: `sudo apimdev docker\ninstall --dry-runn`.\n" +
			"\n```sh\n" +
			"$ APIMDEV_TOKEN=\"$(cat gw.token)\" apimdev up --detach --name x \\\n" +
			"    --endpoint y --bogus\n" +
			"apimdev status -o json | jq . && apimdev down --keep-cluster --zap\n" +
			"# apimdev up --commented-out\n" +
			"✓ cluster  created apimdev (kubeconfig …)\n" +
			"    fix: run `apimdev promote --to dev` or `apimdev promote --too dev`\n" +
			"```\n" +
			"[not a link in code](`nowhere.md`) `[nor this](nowhere.md)`\n")},
		"docs/page.md": {Data: []byte("# Page\n\n## A part, and more\n\nBack to [the README](../README.md#sample).\n" +
			"## `promote`: proved\n## Dup\n## Dup\n[1](#promote-proved) [2](#dup-1) [3](#dup-2)\n")},
	}
	c := newDocChecker(fsys, (&app{getenv: func(string) string { return "" }}).rootCommand())
	for _, f := range []string{"README.md", "docs/page.md"} {
		c.checkFile(f)
	}
	want := []string{
		"README.md:4: link docs/lost.md: no such file or directory",
		"README.md:4: link docs/page.md#no-such-part: docs/page.md has no heading whose anchor is #no-such-part",
		"README.md:4: link #nowhere: README.md has no heading whose anchor is #nowhere",
		"README.md:7: `apimdev upp --demo`: apimdev has no command \"upp\"",
		"README.md:7: `apimdev kit frobnicate`: apimdev kit has no command \"frobnicate\"",
		"README.md:7: `apimdev up --no-such-flag`: apimdev up has no flag --no-such-flag",
		"README.md:7: `apimdev status -q`: apimdev status has no flag -q",
		"README.md:8: `sudo apimdev docker install --dry-runn`: apimdev docker install has no flag --dry-runn",
		"README.md:12: `$ APIMDEV_TOKEN=\"$(cat gw.token)\" apimdev up --detach --name x --endpoint y --bogus`: apimdev up has no flag --bogus",
		"README.md:14: `apimdev status -o json | jq . && apimdev down --keep-cluster --zap`: apimdev down has no flag --zap",
		"README.md:17: `apimdev promote --too dev`: apimdev promote has no flag --too",
		"docs/page.md:9: link #dup-2: docs/page.md has no heading whose anchor is #dup-2",
	}
	if got := strings.Join(c.sorted(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\n\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// up, kit create, logs, status (twice), docker install, down, promote (twice)
	// and the five wrong ones; links: the good four, the bad three, the
	// page's four.
	if c.commands != 14 || c.links != 11 {
		t.Errorf("checked %d command(s) and %d link(s), want 14 and 11", c.commands, c.links)
	}
}

// docs/architecture.md's package map names every package under internal/.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var pkgs []string
	err = filepath.WalkDir(filepath.Join(repoRoot, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			rel, err := filepath.Rel(repoRoot, filepath.Dir(p))
			if err != nil {
				return err
			}
			pkgs = append(pkgs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if seen[p] {
			continue
		}
		seen[p] = true
		if !regexp.MustCompile(`(^|[^\w/.-])` + regexp.QuoteMeta(p) + `($|[^\w/.-])`).MatchString(page) {
			t.Errorf("docs/architecture.md does not name the package %s", p)
		}
	}
	if len(seen) < 20 {
		t.Errorf("found %d package(s) under internal/: the walk went wrong", len(seen))
	}
}

// docFiles is every markdown file of the repository: README.md, docs/, and
// the others (BENCHMARKS.md, the labs, the rig's notes), which link into them.
// Hidden directories, dist/ and testdata are not the repository's docs.
func docFiles(fsys fs.FS) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "dist" || d.Name() == "testdata") {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

type docChecker struct {
	fsys     fs.FS
	root     *cobra.Command
	anchors  map[string]map[string]bool // file -> anchors of its headings
	problems []string                   // file:line: what, in the order found
	commands int                        // commands checked
	links    int                        // relative links checked
}

func newDocChecker(fsys fs.FS, root *cobra.Command) *docChecker {
	// What Execute adds: the completion and help commands, --help on every
	// command and --version on the root.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultVersionFlag()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return &docChecker{fsys: fsys, root: root, anchors: map[string]map[string]bool{}}
}

// sorted gives the problems by file and line, in the order found within a line.
func (c *docChecker) sorted() []string {
	type at struct {
		file string
		line int
	}
	key := func(p string) at {
		var a at
		parts := strings.SplitN(p, ":", 3)
		a.file = parts[0]
		fmt.Sscan(parts[1], &a.line)
		return a
	}
	ps := append([]string(nil), c.problems...)
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := key(ps[i]), key(ps[j])
		return a.file < b.file || a.file == b.file && a.line < b.line
	})
	return ps
}

func (c *docChecker) problem(file string, line int, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
}

var (
	fenceRe      = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpanRe   = regexp.MustCompile("(`+)([^`]|[^`][\\s\\S]*?[^`])(`+)")
	inlineLinkRe = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	linkRe       = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	headingRe    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	wordRe       = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	envRe        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// checkFile checks one document: its links outside code, the commands in its
// code blocks (a line, with its continuations, and the code spans in it) and
// in its code spans.
func (c *docChecker) checkFile(file string) {
	b, err := fs.ReadFile(c.fsys, file)
	if err != nil {
		c.problem(file, 0, "%v", err)
		return
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	var para []string
	paraStart := 0
	flush := func() {
		if len(para) > 0 {
			c.checkProse(file, paraStart, strings.Join(para, "\n"))
		}
		para = nil
	}
	inFence := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if fenceRe.MatchString(l) {
			flush()
			inFence = !inFence
			continue
		}
		if inFence {
			n := i + 1
			for strings.HasSuffix(l, "\\") && i+1 < len(lines) && !fenceRe.MatchString(lines[i+1]) {
				i++
				l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(lines[i])
			}
			c.checkCommand(file, n, l)
			for _, m := range codeSpanRe.FindAllStringSubmatch(l, -1) {
				if len(m[1]) == len(m[3]) {
					c.checkCommand(file, n, m[2])
				}
			}
			continue
		}
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if len(para) == 0 {
			paraStart = i + 1
		}
		para = append(para, l)
	}
	flush()
}

// checkProse checks a paragraph that starts at line start: the commands in
// its code spans (which may run over a line end) and its links outside them.
func (c *docChecker) checkProse(file string, start int, text string) {
	lineAt := func(off int) int { return start + strings.Count(text[:off], "\n") }
	blank := []byte(text)
	for _, m := range codeSpanRe.FindAllStringSubmatchIndex(text, -1) {
		if m[3]-m[2] != m[7]-m[6] {
			continue
		}
		c.checkCommand(file, lineAt(m[0]), strings.ReplaceAll(text[m[4]:m[5]], "\n", " "))
		for i := m[0]; i < m[1]; i++ {
			if blank[i] != '\n' {
				blank[i] = ' '
			}
		}
	}
	prose := string(blank)
	for _, m := range linkRe.FindAllStringSubmatchIndex(prose, -1) {
		c.checkLink(file, lineAt(m[0]), prose[m[2]:m[3]])
	}
}

func (c *docChecker) checkLink(file string, line int, target string) {
	if u, err := url.Parse(target); err == nil && u.Scheme != "" {
		return // http(s), mailto: not this check's
	}
	c.links++
	p, anchor, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		c.problem(file, line, "link %s: %v", target, err)
		return
	}
	dest := file
	if p != "" {
		dest = path.Join(path.Dir(file), p)
		if _, err := fs.Stat(c.fsys, dest); err != nil {
			c.problem(file, line, "link %s: no such file or directory", target)
			return
		}
	}
	if anchor == "" {
		return
	}
	if !strings.HasSuffix(dest, ".md") {
		c.problem(file, line, "link %s: an anchor in %s, which is not a markdown page", target, dest)
		return
	}
	if !c.anchorsOf(dest)[anchor] {
		c.problem(file, line, "link %s: %s has no heading whose anchor is #%s", target, dest, anchor)
	}
}

// anchorsOf gives the anchors GitHub makes for a page's headings.
func (c *docChecker) anchorsOf(file string) map[string]bool {
	if a, ok := c.anchors[file]; ok {
		return a
	}
	a := map[string]bool{}
	c.anchors[file] = a
	b, err := fs.ReadFile(c.fsys, file)
	if err != nil {
		return a
	}
	count := map[string]int{}
	inFence := false
	for _, l := range strings.Split(string(b), "\n") {
		if fenceRe.MatchString(l) {
			inFence = !inFence
			continue
		}
		m := headingRe.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if inFence || m == nil {
			continue
		}
		s := headingSlug(m[1])
		if n := count[s]; n > 0 {
			a[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			a[s] = true
		}
		count[s]++
	}
	return a
}

// headingSlug is GitHub's anchor for a heading: its text in lower case,
// links reduced to their text, punctuation but '-' and '_' dropped, each
// space a '-'.
func headingSlug(h string) string {
	h = inlineLinkRe.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkCommand checks s, a line of code or a code span, when it is an
// apimdev command: `apimdev …`, after a `$ ` prompt, VAR=value settings or
// sudo. Each command of a pipeline or list (|, &&, ;) is checked.
func (c *docChecker) checkCommand(file string, line int, s string) {
	shown := strings.Join(strings.Fields(s), " ")
	var seg []string
	for _, tok := range shellFields(s) {
		switch {
		case tok == "|" || tok == "||" || tok == "&&" || tok == ";" || tok == "&":
			c.checkSegment(file, line, shown, seg)
			seg = nil
			continue
		case strings.HasPrefix(tok, "#") || strings.HasPrefix(tok, ">") || strings.HasPrefix(tok, "2>") || tok == "…" || tok == "...":
			c.checkSegment(file, line, shown, seg)
			return
		}
		seg = append(seg, tok)
	}
	c.checkSegment(file, line, shown, seg)
}

func (c *docChecker) checkSegment(file string, line int, shown string, toks []string) {
	i := 0
	if i < len(toks) && toks[i] == "$" {
		i++
	}
	for i < len(toks) && envRe.MatchString(toks[i]) {
		i++
	}
	if i < len(toks) && toks[i] == "sudo" {
		i++
	}
	if i >= len(toks) || (toks[i] != "apimdev" && toks[i] != "./apimdev") {
		return
	}
	c.commands++
	cmd, names := c.root, "apimdev"
	args := toks[i+1:]
	// The command path: words naming subcommands, as long as they do.
	for len(args) > 0 && wordRe.MatchString(args[0]) {
		sub := findSub(cmd, args[0])
		if sub == nil {
			if cmd.HasAvailableSubCommands() {
				c.problem(file, line, "`%s`: %s has no command %q", shown, names, args[0])
				return
			}
			break // an argument
		}
		if sub.Hidden {
			c.problem(file, line, "`%s`: %s %s is hidden from --help", shown, names, args[0])
		}
		cmd, names = sub, names+" "+sub.Name()
		args = args[1:]
	}
	for _, a := range args {
		a = strings.Trim(a, "[]")
		if len(a) < 2 || a[0] != '-' || unicode.IsDigit(rune(a[1])) {
			continue
		}
		name, fl := a[:2], (*pflag.Flag)(nil)
		if strings.HasPrefix(a, "--") {
			n, _, _ := strings.Cut(a[2:], "=")
			name = "--" + n
			if fl = cmd.Flags().Lookup(n); fl == nil {
				fl = cmd.InheritedFlags().Lookup(n)
			}
		} else if fl = cmd.Flags().ShorthandLookup(a[1:2]); fl == nil {
			fl = cmd.InheritedFlags().ShorthandLookup(a[1:2])
		}
		switch {
		case fl == nil:
			c.problem(file, line, "`%s`: %s has no flag %s", shown, names, name)
		case fl.Hidden || fl.Deprecated != "":
			c.problem(file, line, "`%s`: %s's flag %s is hidden from --help or deprecated", shown, names, name)
		}
	}
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, s := range cmd.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// shellFields splits a command line into words the way a shell would for
// what the docs write: quotes keep spaces in a word, and an operator (| && ;)
// is a word of its own only when spaces set it apart.
func shellFields(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		inTok bool
	)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inTok = r, true
		case r == ' ' || r == '\t':
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out
}
