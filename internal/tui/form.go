package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/token"
)

// Where the token comes from.
const (
	sourcePaste = "paste"
	sourceFile  = "file"
	sourceEnv   = "env"
)

// How the run starts: the wizard's first question.
const (
	modeToken = "token" // the user's gateway, with its token
	modeDemo  = "demo"  // the stand-in, no Azure
	modeKit   = "kit"   // an offline workshop kit
	modeEntra = "entra" // the user's gateway, authenticating as a Microsoft Entra app
)

// formValues are what the form edits. They live on the heap so the huh
// fields and the model share them across model copies.
type formValues struct {
	mode                string
	kitPath             string
	kit                 *kit.Manifest // read when kitPath was checked
	name, endpoint      string
	source              string
	token, tokenFile    string // token is the secret (or, with Entra ID, the client secret); it is never shown
	tenantID, clientID  string // the Entra app's ids
	image               string
	httpPort, httpsPort string
}

// fields maps each value to the config field it sets, in form order.
func (v *formValues) fields() []struct{ field, value string } {
	fs := []struct{ field, value string }{
		{"gateway.name", v.name}, {"gateway.endpoint", v.endpoint}, {"gateway.image", v.image},
		{"forward.httpPort", v.httpPort}, {"forward.httpsPort", v.httpsPort},
	}
	if v.mode == modeEntra {
		fs = append(fs, []struct{ field, value string }{{"gateway.auth.type", config.AuthEntraApp},
			{"gateway.auth.tenantId", v.tenantID}, {"gateway.auth.clientId", v.clientID}}...)
	}
	return fs
}

// entra says the gateway authenticates as a Microsoft Entra app: the
// credential asked for is its client secret, not a token.
func (v *formValues) entra() bool { return v.mode == modeEntra }

// settingsForm is the first screen: the gateway's settings, validated field
// by field with the configuration's own validator.
type settingsForm struct {
	base   config.Config
	getenv func(string) string
	now    func() time.Time
	vals   *formValues
	form   *huh.Form

	envToken   bool   // APIMDEV_TOKEN is set
	envSecret  bool   // APIMDEV_CLIENT_SECRET is set
	submitErr  string // why the last submit was refused
	submitting bool   // submitted; the token is being read

	fileAsked string       // the token file path last checked
	fileInfo  tokenFileMsg // the answer for fileAsked, once it came
}

// tokenFileMsg is the live check of the token file named in the form.
type tokenFileMsg struct {
	path string
	tok  token.Token
	err  error
	done bool
}

// tokenMsg is the token read at submit, from wherever the form said.
type tokenMsg struct {
	tok token.Token
	err error
}

func newSettingsForm(base config.Config, getenv func(string) string, now func() time.Time) *settingsForm {
	v := &formValues{
		name: base.Gateway.Name, endpoint: base.Gateway.Endpoint, image: base.Gateway.Image,
		httpPort: strconv.Itoa(base.Forward.HTTPPort), httpsPort: strconv.Itoa(base.Forward.HTTPSPort),
		source: sourcePaste, mode: modeToken,
	}
	if base.Gateway.Endpoint == demo.Endpoint {
		// What runs (or ran) is the demo: running it again is the default.
		v.mode = modeDemo
		v.name = config.DefaultGatewayName
		if base.Gateway.Name != "" {
			v.name = base.Gateway.Name
		}
	}
	f := &settingsForm{base: base, getenv: getenv, now: now, vals: v, envToken: getenv("APIMDEV_TOKEN") != "", envSecret: getenv("APIMDEV_CLIENT_SECRET") != ""}
	if a := base.Gateway.Auth; a.Mode() == config.AuthEntraApp {
		// What runs authenticates with Entra ID: ask the same again.
		v.mode, v.tenantID, v.clientID = modeEntra, a.TenantID, a.ClientID
	}
	if tf := base.Gateway.TokenFile; tf != "" && tf != "-" {
		v.tokenFile, v.source = tf, sourceFile
	} else if f.envToken {
		v.source = sourceEnv
	}
	f.build()
	return f
}

// formFields are the form's fields, one by one: the full-screen form
// groups them, the accessible mode asks them in turn.
type formFields struct {
	mode                *huh.Select[string]
	kit                 *huh.Input
	name, endpoint      *huh.Input
	tenantID, clientID  *huh.Input
	source              *huh.Select[string]
	token, tokenFile    *huh.Input
	env                 *huh.Note
	image               *huh.Input
	httpPort, httpsPort *huh.Input
	// The demo asks only the ports: the same values, in fields of their own.
	demoHTTPPort, demoHTTPSPort *huh.Input
	// descriptions are said before each accessible prompt (huh's accessible
	// input shows only the title).
	descriptions map[huh.Field]string
}

func (f *settingsForm) newFields(accessible bool) formFields {
	v := f.vals
	sources := func() []huh.Option[string] {
		o := []huh.Option[string]{
			huh.NewOption("paste it here (masked)", sourcePaste),
			huh.NewOption("read it from a file", sourceFile),
		}
		switch {
		case v.entra() && f.envSecret:
			o = append(o, huh.NewOption("use APIMDEV_CLIENT_SECRET from your environment", sourceEnv))
		case !v.entra() && f.envToken:
			o = append(o, huh.NewOption("use APIMDEV_TOKEN from your environment", sourceEnv))
		}
		return o
	}
	credential := func(token, secret string) func() string {
		return func() string {
			if v.entra() {
				return secret
			}
			return token
		}
	}
	// Accessible prompts keep the current value on an empty answer, and say
	// what it is in the title.
	title := func(t string, cur *string) string {
		if accessible && *cur != "" {
			return fmt.Sprintf("%s [%s]:", t, *cur)
		}
		if accessible {
			return t + ":"
		}
		return t
	}
	check := func(cur *string, v func(string) error) func(string) error {
		if !accessible {
			return v
		}
		return func(s string) error {
			if strings.TrimSpace(s) == "" {
				s = *cur
			}
			return v(s)
		}
	}
	fs := formFields{
		mode: huh.NewSelect[string]().Key("mode").Title("How do you want to start?").
			Description(descMode).
			Options(huh.NewOption("I have a gateway token (Azure API Management)", modeToken),
				huh.NewOption("Try the demo: no Azure, a stand-in gateway", modeDemo),
				huh.NewOption("Load a workshop kit (no registry needed)", modeKit),
				huh.NewOption("My gateway authenticates as a Microsoft Entra app (no 30-day token)", modeEntra)).Value(&v.mode),
		kit: huh.NewInput().Key("kit").Title(title("Kit file", &v.kitPath)).
			Description(descKit).
			Value(&v.kitPath).Validate(check(&v.kitPath, f.validateKit)),
		name: huh.NewInput().Key("name").Title(title("Gateway name", &v.name)).
			Description(descName).
			Value(&v.name).Validate(check(&v.name, f.validator("gateway.name"))),
		endpoint: huh.NewInput().Key("endpoint").Title(title("Configuration endpoint", &v.endpoint)).
			Description(descEndpoint).
			Value(&v.endpoint).Validate(check(&v.endpoint, f.validator("gateway.endpoint"))),
		tenantID: huh.NewInput().Key("tenantId").Title(title("Directory (tenant) ID", &v.tenantID)).
			Description(descTenant).
			Value(&v.tenantID).Validate(check(&v.tenantID, f.validator("gateway.auth.tenantId"))),
		clientID: huh.NewInput().Key("clientId").Title(title("Application (client) ID", &v.clientID)).
			Description(descClient).
			Value(&v.clientID).Validate(check(&v.clientID, f.validator("gateway.auth.clientId"))),
		source:    huh.NewSelect[string]().Key("source").Value(&v.source),
		token:     huh.NewInput().Key("token").EchoMode(huh.EchoModePassword).Value(&v.token).Validate(func(s string) error { return validateCredential(v.entra(), s) }),
		tokenFile: huh.NewInput().Key("tokenFile").Value(&v.tokenFile).Validate(check(&v.tokenFile, validateTokenFile)),
		env:       huh.NewNote(),
		image: huh.NewInput().Key("image").Title(title("Gateway image", &v.image)).
			Description(descImage).
			Value(&v.image).Validate(check(&v.image, f.validator("gateway.image"))),
		httpPort: huh.NewInput().Key("httpPort").Title(title("Local HTTP port", &v.httpPort)).
			Description(descHTTP).
			Value(&v.httpPort).Validate(check(&v.httpPort, f.validator("forward.httpPort"))),
		httpsPort: huh.NewInput().Key("httpsPort").Title(title("Local HTTPS port", &v.httpsPort)).
			Description(descHTTPS).
			Value(&v.httpsPort).Validate(check(&v.httpsPort, f.validator("forward.httpsPort"))),
	}
	// The credential's fields say token or client secret as the mode says:
	// fixed now in accessible mode (asked after the mode), live otherwise.
	srcTitle, srcDesc := credential("Gateway token", "Client secret"), credential(descSource, descSecretSource)
	tokTitle, tokDesc := credential(title("Token (masked)", new(string)), title("Client secret (masked)", new(string))), credential(descToken, descSecret)
	fileTitle, fileDesc := credential(title("Token file", &v.tokenFile), title("Client secret file", &v.tokenFile)), credential(descTokenFile, descSecretFile)
	envTitle := credential("Token from APIMDEV_TOKEN", "Client secret from APIMDEV_CLIENT_SECRET")
	envDesc := credential("The token is read from the APIMDEV_TOKEN variable of this shell; unset it to paste one instead.",
		"The client secret is read from the APIMDEV_CLIENT_SECRET variable of this shell; unset it to paste one instead.")
	if accessible {
		fs.source.Title(srcTitle()).Description(srcDesc()).Options(sources()...)
		fs.token.Title(tokTitle()).Description(tokDesc())
		fs.tokenFile.Title(fileTitle()).Description(fileDesc())
		fs.env.Title(envTitle()).Description(envDesc())
	} else {
		fs.source.TitleFunc(srcTitle, &v.mode).DescriptionFunc(srcDesc, &v.mode).OptionsFunc(sources, &v.mode)
		fs.token.TitleFunc(tokTitle, &v.mode).DescriptionFunc(tokDesc, &v.mode)
		fs.tokenFile.TitleFunc(fileTitle, &v.mode).DescriptionFunc(fileDesc, &v.mode)
		fs.env.TitleFunc(envTitle, &v.mode).DescriptionFunc(envDesc, &v.mode)
	}
	fs.demoHTTPPort = huh.NewInput().Key("httpPort").Title(title("Local HTTP port", &v.httpPort)).Description(descHTTP).
		Value(&v.httpPort).Validate(check(&v.httpPort, f.validator("forward.httpPort")))
	fs.demoHTTPSPort = huh.NewInput().Key("httpsPort").Title(title("Local HTTPS port", &v.httpsPort)).Description(descHTTPS).
		Value(&v.httpsPort).Validate(check(&v.httpsPort, f.validator("forward.httpsPort")))
	fs.descriptions = map[huh.Field]string{}
	for _, d := range []struct {
		f    huh.Field
		text string
	}{
		{fs.mode, descMode}, {fs.kit, descKit}, {fs.name, descName}, {fs.endpoint, descEndpoint}, {fs.tenantID, descTenant}, {fs.clientID, descClient},
		{fs.source, descSource}, {fs.token, descToken},
		{fs.tokenFile, descTokenFile}, {fs.image, descImage}, {fs.httpPort, descHTTP}, {fs.httpsPort, descHTTPS},
	} {
		fs.descriptions[d.f] = d.text
	}
	fs.descriptions[fs.source], fs.descriptions[fs.token], fs.descriptions[fs.tokenFile] = srcDesc(), tokDesc(), fileDesc()
	return fs
}

// What each field is for.
const (
	descMode      = "the demo is apimdev's stand-in gateway (stand-in, not Azure API Management)"
	descKit       = "the kit.tar an instructor made with `apimdev kit create`; its checksums are verified first"
	descName      = "the gateway's name in the Azure portal (API Management > Gateways)"
	descEndpoint  = "config.service.endpoint on the gateway's Deployment tab, e.g. contoso.configuration.azure-api.net"
	descSource    = "from the same Deployment tab; it goes only into the cluster's Secret"
	descToken     = "paste it with or without \"GatewayKey \"; it stays masked"
	descTokenFile = "a file holding the token, e.g. ~/gw.token"
	descImage     = "the image to run; the default is Microsoft's self-hosted gateway v2"
	descHTTP      = "127.0.0.1 port forwarded to the gateway's port 80"
	descHTTPS     = "127.0.0.1 port forwarded to the gateway's port 443"
	// Microsoft Entra app authentication.
	descTenant       = "Microsoft Entra admin center > App registrations > your app > Overview: Directory (tenant) ID"
	descClient       = "the same Overview page: Application (client) ID"
	descSecretSource = "the app's client secret (Certificates & secrets > its Value); it goes only into the cluster's Secret"
	descSecret       = "paste the secret's Value, not its Secret ID; it stays masked"
	descSecretFile   = "a file holding the client secret's Value, e.g. ~/gw-app.secret"
)

// build makes the huh form over f.vals; a rebuilt form keeps the values.
func (f *settingsForm) build() {
	v, fs := f.vals, f.newFields(false)
	demoRun := v.demoRun
	// Group titles are fixed when the form is made; the fields' own titles
	// follow the mode.
	credTitle := "Gateway credential"
	f.form = huh.NewForm(
		huh.NewGroup(fs.mode).Title("apimdev"),
		huh.NewGroup(fs.kit).Title("Workshop kit").WithHideFunc(func() bool { return v.mode != modeKit }),
		huh.NewGroup(fs.name, fs.endpoint, fs.source).Title("Your gateway").WithHideFunc(demoRun),
		huh.NewGroup(fs.tenantID, fs.clientID).Title("Microsoft Entra app").WithHideFunc(func() bool { return !v.entra() }),
		huh.NewGroup(fs.token).Title(credTitle).WithHideFunc(func() bool { return demoRun() || v.source != sourcePaste }),
		huh.NewGroup(fs.tokenFile).Title(credTitle).WithHideFunc(func() bool { return demoRun() || v.source != sourceFile }),
		huh.NewGroup(fs.env).Title(credTitle).WithHideFunc(func() bool { return demoRun() || v.source != sourceEnv }),
		huh.NewGroup(fs.image, fs.httpPort, fs.httpsPort).Title("On this machine").WithHideFunc(demoRun),
		huh.NewGroup(fs.demoHTTPPort, fs.demoHTTPSPort).Title("On this machine").WithHideFunc(func() bool { return !demoRun() }),
	).WithShowHelp(false).WithTheme(huh.ThemeFunc(huh.ThemeBase16))
}

// validator checks one field with the configuration's validator, the other
// fields as they are now.
func (f *settingsForm) validator(field string) func(string) error {
	return func(s string) error {
		c, err := f.configWith(field, s)
		if err != nil {
			return err
		}
		var ps config.Problems
		if errors.As(c.Validate(), &ps) {
			for _, p := range ps {
				if p.Field == field {
					return problemError(p)
				}
			}
		}
		return nil
	}
}

func problemError(p config.Problem) error {
	if p.Fix == "" {
		return errors.New(p.Message)
	}
	return fmt.Errorf("%s; fix: %s", p.Message, p.Fix)
}

// configWith is the base configuration with the form's values, field set to
// value. Another field's unusable value is left to that field's validator.
func (f *settingsForm) configWith(field, value string) (config.Config, error) {
	c := f.base
	for _, fv := range f.vals.fields() {
		v := fv.value
		if fv.field == field {
			v = value
		}
		if err := c.Set(fv.field, strings.TrimSpace(v)); err != nil && fv.field == field {
			return c, errors.New(strings.TrimPrefix(err.Error(), field+": "))
		}
	}
	return c, nil
}

// demoRun says the run is the demo's: chosen, or the kit holds only the
// demo's stand-in.
func (v *formValues) demoRun() bool {
	if v.mode == modeKit {
		if v.kit == nil {
			return false
		}
		_, gw := v.kit.Image(kit.RoleGateway)
		return !gw
	}
	return v.mode == modeDemo
}

// validateKit reads the kit's manifest (its checksums are verified when it
// loads): whether it holds a gateway decides the questions that follow.
func (f *settingsForm) validateKit(s string) error {
	path := strings.TrimSpace(s)
	if path == "" {
		return errors.New("name the kit file, e.g. ~/kit.tar")
	}
	m, err := kit.ReadManifest(expandHome(path))
	if err != nil {
		f.vals.kit = nil
		return err
	}
	_, hasGW := m.Image(kit.RoleGateway)
	_, hasDemo := m.Image(kit.RoleDemo)
	if !hasGW && !hasDemo {
		return errors.New("the kit holds neither a gateway image nor the demo's stand-in")
	}
	f.vals.kit = &m
	return nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, rest)
		}
	}
	return p
}

// Workshop is what the first answer adds to the run: the demo, a kit, or
// nothing (the user's gateway).
func (f *settingsForm) workshop() *pipeline.Workshop {
	v := f.vals
	switch {
	case v.mode == modeKit && v.kit != nil:
		return &pipeline.Workshop{KitPath: expandHome(strings.TrimSpace(v.kitPath)), Manifest: v.kit, Demo: v.demoRun()}
	case v.mode == modeDemo:
		return &pipeline.Workshop{Demo: true}
	}
	return nil
}

// config is what the form says, validated as a whole.
func (f *settingsForm) config() (config.Config, error) {
	c, err := f.configWith("", "")
	if err != nil {
		return c, err
	}
	c.Gateway.TokenFile = ""
	if f.vals.source == sourceFile {
		if f.vals.entra() {
			c.Gateway.Auth.ClientSecretFile = strings.TrimSpace(f.vals.tokenFile)
		} else {
			c.Gateway.TokenFile = strings.TrimSpace(f.vals.tokenFile)
		}
	}
	if ws := f.workshop(); ws != nil {
		if ws.Demo {
			c.Gateway.Endpoint, c.Gateway.Image = demo.Endpoint, ws.DemoImage(f.base.Gateway.Image)
		}
		ws.Configure(&c, false)
	}
	return c, c.Validate()
}

func validateToken(s string) error { return validateCredential(false, s) }

// validateCredential checks a pasted token, or an Entra app's client secret.
func validateCredential(entra bool, s string) error {
	parse := token.Parse
	if entra {
		parse = token.AppSecret
	}
	if _, err := parse(s); err != nil {
		return tokenProblem(err)
	}
	return nil
}

func validateTokenFile(s string) error {
	switch strings.TrimSpace(s) {
	case "":
		return errors.New("name the file that holds the token")
	case "-":
		return errors.New("the wizard cannot read the token from stdin: paste it instead")
	}
	return nil
}

// tokenProblem says what is wrong with a token, and how to fix it, without
// quoting any of it.
func tokenProblem(err error) error {
	var pe *token.ParseError
	if errors.As(err, &pe) && pe.Fix != "" {
		return fmt.Errorf("%s; fix: %s", pe.Problem, pe.Fix)
	}
	var p *config.Problem
	if errors.As(err, &p) && p.Fix != "" {
		return fmt.Errorf("%s; fix: %s", p.Message, p.Fix)
	}
	return err
}

// focused is the key of the field with the focus.
func (f *settingsForm) focused() string {
	if fld := f.form.GetFocusedField(); fld != nil {
		return fld.GetKey()
	}
	return ""
}

// checkFile asks about the token file when its path changed: reading it is
// I/O, so it happens in a command and the answer comes back as a message.
func (f *settingsForm) checkFile() tea.Cmd {
	path := strings.TrimSpace(f.vals.tokenFile)
	if f.vals.source != sourceFile || path == "" || path == "-" || path == f.fileAsked {
		return nil
	}
	f.fileAsked = path
	c := f.base
	c.Gateway.TokenFile = path
	if f.vals.entra() {
		c.Gateway.Auth = config.Auth{Type: config.AuthEntraApp, ClientSecretFile: path}
	}
	getenv := f.getenv
	return func() tea.Msg {
		tok, _, err := config.LoadToken(c, getenv, nil)
		return tokenFileMsg{path: path, tok: tok, err: err, done: true}
	}
}

// loadToken reads the token at submit, wherever the form said it is (the
// demo mints its own: none).
func (f *settingsForm) loadToken(c config.Config) tea.Cmd {
	pasted, source, getenv, demoRun, entra := f.vals.token, f.vals.source, f.getenv, f.vals.demoRun(), f.vals.entra()
	return func() tea.Msg {
		if demoRun {
			return tokenMsg{}
		}
		if source == sourcePaste {
			parse := token.Parse
			if entra {
				parse = token.AppSecret
			}
			tok, err := parse(pasted)
			return tokenMsg{tok: tok, err: err}
		}
		tok, _, err := config.LoadToken(c, getenv, nil)
		return tokenMsg{tok: tok, err: err}
	}
}

// tokenStatus is the line under the form about the token as entered so far:
// its gateway and expiry, or what is wrong with it. Never the token itself.
func (f *settingsForm) tokenStatus() (line string, tone expiryTone) {
	var tok token.Token
	var err error
	parse := token.Parse
	env := "APIMDEV_TOKEN"
	if f.vals.entra() {
		parse, env = token.AppSecret, "APIMDEV_CLIENT_SECRET"
	}
	switch f.vals.source {
	case sourcePaste:
		if strings.TrimSpace(f.vals.token) == "" {
			return "", toneNone
		}
		tok, err = parse(f.vals.token)
	case sourceFile:
		path := strings.TrimSpace(f.vals.tokenFile)
		if path == "" {
			return "", toneNone
		}
		if f.fileInfo.path != path || !f.fileInfo.done {
			return "reading " + path + " …", toneNone
		}
		tok, err = f.fileInfo.tok, f.fileInfo.err
	case sourceEnv:
		tok, err = parse(f.getenv(env))
	}
	if err != nil {
		return tokenProblem(err).Error(), toneBad
	}
	return describeToken(tok, f.now()), toneOf(tok.ExpiryAt(f.now()))
}

// describeToken is what may be said about a token: its gateway and expiry.
func describeToken(t token.Token, now time.Time) string {
	if t.IsAppSecret() {
		return "client secret given: " + t.ExpiryAt(now).Describe()
	}
	return fmt.Sprintf("gateway %s, %s", t.GatewayID, t.ExpiryAt(now).Describe())
}

type expiryTone int

const (
	toneNone expiryTone = iota
	toneOK
	toneWarn
	toneBad
)

func toneOf(e token.Expiry) expiryTone {
	switch e.State {
	case token.ExpiryOK:
		return toneOK
	case token.ExpiryElsewhere:
		return toneOK
	case token.ExpirySoon, token.ExpiryUnknown:
		return toneWarn
	default:
		return toneBad
	}
}
