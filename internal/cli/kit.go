package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) kitCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kit",
		Short: "The offline workshop kit: every image and the configuration in one signed, verified archive",
		Long: `A kit is one tar file with the kind node image, the gateway image (pinned tag),
the statsd exporter image the prod profile uses, with --demo the demo's stand-in
gateway image, and apimdev's configuration (never a token, never a path).
manifest.json lists a SHA-256 for every file (SHA256SUMS too, for sha256sum -c),
and manifest.json.minisig is the instructor's minisign signature of it.

A kit runs its node image as a privileged container (root on the machine) and
puts names on images in your engine, so it loads only when a key you trust
signed it: the instructor makes a key once ('apimdev kit keygen'), signs with
'kit create --sign', and gives you the key's fingerprint; you pass it with
--trust (or APIMDEV_KIT_TRUST).

Make it once where there is network, copy it to each machine, then
'apimdev up --kit kit.tar --trust SHA256:…' loads it with no registry at all.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.kitCreateCommand(), a.kitLoadCommand(false), a.kitLoadCommand(true), a.kitKeygenCommand())
	return cmd
}

func (a *app) kitCreateCommand() *cobra.Command {
	var withDemo bool
	var signWith string
	cmd := &cobra.Command{
		Use:   "create [FILE]",
		Short: "Save the node, gateway and statsd exporter images (and with --demo the stand-in) with the configuration into one archive",
		Long: `create saves images from this machine's Docker engine into FILE (also -o FILE):
the node image (--node-image, default kind's), the gateway image (--image, whose
tag must be pinned to major.minor.patch: a floating tag such as v2 is pinned from
the local image's tags), the statsd exporter (prod.statsdImage), and with --demo
the demo's stand-in gateway (stand-in, not Azure API Management). Every image
must be on this machine; all missing ones are listed at once, with where to get
them. The configuration goes in as apimdev.yaml, with no token and no paths of
this machine.

--sign KEYFILE signs the kit with a key from 'apimdev kit keygen' (its password
from the terminal, or APIMDEV_KIT_PASSWORD); attendees then load it with
--trust and the fingerprint keygen printed. Without --sign the kit is unsigned,
and loads only with --allow-unsigned.`,
		Example: `  apimdev kit keygen -o instructor
  apimdev kit create -o kit.tar --sign instructor.key --image mcr.microsoft.com/azure-api-management/gateway:2.11.1 --demo
  apimdev kit create kit.tar --sign instructor.key --demo --node-image kindest/node:v1.34.0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := kitOutput(cmd, args)
			if err != nil {
				return err
			}
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if err := cfg.ValidateExisting(); err != nil {
				return err
			}
			// The key, and its password, before minutes of saving.
			var key *kit.SigningKey
			if signWith != "" {
				if key, err = kit.ReadSigningKey(signWith, func() (string, error) {
					return a.kitPassword("Password of "+signWith+": ", false, "the key "+signWith+" is password-protected: set APIMDEV_KIT_PASSWORD, or run kit create at a terminal to type it")
				}); err != nil {
					return err
				}
			}
			d, err := pipeline.Engine(cmd.Context(), cfg, a.getenv)
			if err != nil {
				return err
			}
			imageSet := cmd.Flags().Changed("image") || a.getenv("APIMDEV_IMAGE") != ""
			want, cfgOut, notes, err := pipeline.KitPlan(cmd.Context(), d, cfg, withDemo, imageSet)
			if err != nil {
				var pe *pipeline.KitPinError
				if errors.As(err, &pe) {
					return &usageError{err.Error()}
				}
				return err
			}
			rep := a.reporter(cfg)
			for _, n := range notes {
				rep.Warn("kit", n, "")
			}
			if key == nil {
				rep.Warn("kit", "the kit will not be signed: attendees can load it only with --allow-unsigned, and cannot tell it from a changed copy",
					"make a key once with `apimdev kit keygen -o instructor`, then sign with `apimdev kit create --sign instructor.key …` and give attendees the fingerprint keygen printed")
			}
			st := rep.Start("kit", "saving "+out)
			c := &kit.Creator{Docker: d, Version: Version, Progress: st.Progress, Key: key}
			// The configuration names the images as the kit holds them.
			if want, err = c.Resolve(cmd.Context(), want); err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			for _, w := range want {
				switch w.Role {
				case kit.RoleNode:
					cfgOut.Cluster.NodeImage = w.Ref
				case kit.RoleGateway:
					cfgOut.Gateway.Image = w.Ref
				case kit.RoleStatsd:
					cfgOut.Prod.StatsdImage = w.Ref
				}
			}
			// KitPlan left out this machine's paths (its notes said so).
			yb, _, err := kit.KitConfig(cfgOut)
			if err != nil {
				return err
			}
			m, size, err := c.Create(cmd.Context(), out, want, append([]byte("# apimdev configuration from a workshop kit: no token in it.\n"), yb...))
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			signer, signed := "", "not signed"
			if key != nil {
				signer, signed = key.Fingerprint, "signed by "+key.Fingerprint
			}
			st.Done(fmt.Sprintf("%s: %s, %d image(s), checksums in %s and %s, %s", out, humanSize(size), len(m.Images), kit.ManifestFile, kit.SumsFile, signed))
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"kit": out, "size": size, "manifest": m, "signed": signer != "", "signer": signer})
				return nil
			}
			a.printManifest(out, size, m, signer)
			return nil
		},
	}
	cmd.Flags().BoolVar(&withDemo, "demo", false, "also include the demo's stand-in gateway image (stand-in, not Azure API Management), for `up --demo`")
	cmd.Flags().StringVar(&signWith, "sign", "", "sign the kit with this secret key (apimdev kit keygen); its password from the terminal or APIMDEV_KIT_PASSWORD")
	return cmd
}

// kitOutput is FILE, or -o FILE as the issue wrote it: -o means the output
// format everywhere else, so it names the kit only when it is not a format.
func kitOutput(cmd *cobra.Command, args []string) (string, error) {
	out := ""
	if len(args) == 1 {
		out = args[0]
	}
	if v, _ := cmd.Flags().GetString("output"); cmd.Flags().Changed("output") && v != "text" && v != "json" {
		if out != "" {
			return "", &usageError{fmt.Sprintf("two kit files: %s and -o %s", out, v)}
		}
		out = v
		if err := cmd.Flags().Set("output", "text"); err != nil {
			return "", err
		}
	}
	if out == "" {
		return "", &usageError{"name the kit file: apimdev kit create -o kit.tar"}
	}
	if !strings.HasSuffix(out, ".tar") {
		return "", &usageError{fmt.Sprintf("%q: a kit is a tar file; name it *.tar", out)}
	}
	return out, nil
}

func (a *app) kitLoadCommand(verifyOnly bool) *cobra.Command {
	use, short := "load FILE", "Verify a kit's signature and every checksum, then load its images into Docker (only those Docker lacks)"
	if verifyOnly {
		use, short = "verify FILE", "Verify a kit's signature and every checksum; load nothing"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

The kit must be signed by a key you trust: --trust takes the fingerprint the
instructor gave you (SHA256:…), their .pub file or the public key line in it
(repeatable; APIMDEV_KIT_TRUST takes the same, comma-separated). Everything is
checked before the engine is touched: the kit's layout, its signature, its
configuration (which may not name files), every file's SHA-256, and the names
each image archive gives. A load that fails part-way puts back every name it
moved off images you already had.`,
		Example: `  apimdev kit verify kit.tar --trust SHA256:…
  apimdev kit load kit.tar --trust instructor.pub
  apimdev kit load my-own-kit.tar --allow-unsigned`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if err := cfg.ValidateExisting(); err != nil {
				return err
			}
			trust, err := a.kitTrust(cmd)
			if err != nil {
				return err
			}
			rep := a.reporter(cfg)
			st := rep.Start("kit", args[0])
			// Verified whole before the engine is chosen (which pings it).
			k, err := kit.Open(cmd.Context(), args[0], trust, st.Progress)
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			defer k.Close()
			a.warnUnsigned(rep, k)
			m := k.Manifest()
			what := fmt.Sprintf("%s; %d image(s), the configuration and the layout check out", kit.SignedBy(k.Signer()), len(m.Images))
			if !verifyOnly {
				d, derr := pipeline.Engine(cmd.Context(), cfg, a.getenv)
				if derr != nil {
					st.Fail(derr)
					return &shownError{err: derr, code: ExitFailure}
				}
				res, err := k.Load(cmd.Context(), d, st.Progress)
				if err != nil {
					st.Fail(err)
					return &shownError{err: err, code: ExitFailure}
				}
				what = res.String()
			}
			st.Done(what)
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"kit": args[0], "verified": true, "signed": k.Signer() != "", "signer": k.Signer(), "manifest": m})
				return nil
			}
			a.printManifest(args[0], 0, m, k.Signer())
			return nil
		},
	}
	kitTrustFlags(cmd.Flags())
	return cmd
}

// kitTrustFlags are the flags that say whom a kit may come from.
func kitTrustFlags(fs *pflag.FlagSet) {
	fs.StringArray("trust", nil, "trust kits signed by this key: its fingerprint (SHA256:…), .pub file or public key; repeatable (also "+pipeline.KitTrustEnv+", comma-separated)")
	fs.Bool("allow-unsigned", false, "load a kit that is not signed at all (only one you made yourself); a signed kit still needs --trust")
}

// kitTrust is whom the command trusts: --trust and APIMDEV_KIT_TRUST, and
// --allow-unsigned.
func (a *app) kitTrust(cmd *cobra.Command) (kit.Trust, error) {
	values, _ := cmd.Flags().GetStringArray("trust")
	values = append(values, strings.Split(a.getenv(pipeline.KitTrustEnv), ",")...)
	fps, err := kit.ParseTrust(values)
	if err != nil {
		return kit.Trust{}, &usageError{err.Error() + "; " + events.HintOf(err)}
	}
	allow, _ := cmd.Flags().GetBool("allow-unsigned")
	return kit.Trust{Fingerprints: fps, AllowUnsigned: allow}, nil
}

// warnUnsigned says so when an unsigned kit goes through.
func (a *app) warnUnsigned(rep *events.Reporter, k *kit.Kit) {
	if k.Signer() == "" {
		rep.Warn("kit", k.Path()+" is not signed: loading it because of --allow-unsigned; nothing says who made it or that no one changed it",
			"use --allow-unsigned only for a kit you made yourself; ask an instructor for a signed kit and their key's fingerprint")
	}
}

// kitPasswordEnv holds a kit key's password for scripts; it is never a
// flag, so it is never in a process list.
const kitPasswordEnv = "APIMDEV_KIT_PASSWORD"

// kitPassword is a kit key's password: APIMDEV_KIT_PASSWORD, else typed at
// the terminal without echo (twice for a new key). without says what to do
// with neither.
func (a *app) kitPassword(prompt string, twice bool, without string) (string, error) {
	if pw := a.getenv(kitPasswordEnv); pw != "" {
		return pw, nil
	}
	f, ok := a.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", &usageError{without}
	}
	read := func(prompt string) (string, error) {
		fmt.Fprint(a.streams.Err, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.streams.Err)
		return string(b), err
	}
	pw, err := read(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if pw == "" {
		return "", &usageError{"an empty password: type one (or, for keygen, pass --no-password for an unprotected key)"}
	}
	if twice {
		again, err := read("The same again: ")
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if again != pw {
			return "", &usageError{"the two passwords differ; nothing was written: run keygen again"}
		}
	}
	return pw, nil
}

func (a *app) kitKeygenCommand() *cobra.Command {
	var noPassword bool
	cmd := &cobra.Command{
		Use:   "keygen [PREFIX]",
		Short: "Make a key pair that signs kits (PREFIX.key, PREFIX.pub) and print its fingerprint for attendees",
		Long: `keygen makes a minisign key pair for signing kits: PREFIX.key, the secret key
(0600, protected by a password you type twice at the terminal, or from
APIMDEV_KIT_PASSWORD; --no-password leaves it unprotected), and PREFIX.pub, the
public key. It never writes over an existing file. PREFIX (also -o PREFIX) is
apimdev-kit unless you name another.

It prints the public key's fingerprint: give it to attendees (on the slide, in
the invitation), who load your kits with --trust and it. Keep PREFIX.key and its
password to yourself: whoever has both can sign kits your attendees trust.`,
		Example: `  apimdev kit keygen -o instructor
  APIMDEV_KIT_PASSWORD=… apimdev kit keygen ci-kit -o json   # in a script
  apimdev kit create -o kit.tar --sign instructor.key --demo`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix, err := keyPrefix(cmd, args)
			if err != nil {
				return err
			}
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			secret, public := kit.KeyFiles(prefix)
			if err := kit.Unused(secret, public); err != nil {
				return err
			}
			g := kit.KeyGen{Prefix: prefix, NoPassword: noPassword}
			if !noPassword {
				if g.Password, err = a.kitPassword("Password for the new key "+secret+": ", true,
					"keygen protects the secret key with a password: run it at a terminal to type one, set APIMDEV_KIT_PASSWORD, or pass --no-password"); err != nil {
					return err
				}
			}
			fp, pub, err := g.Write()
			if err != nil {
				return err
			}
			if noPassword {
				a.reporter(cfg).Warn("kit", secret+" is not password-protected: anyone who can read it can sign kits your attendees trust",
					"keep it on this machine only, or make a protected key with `apimdev kit keygen` (no --no-password)")
			}
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"secretKey": secret, "publicKey": public, "fingerprint": fp, "passwordProtected": !noPassword, "minisignPublicKey": pubKeyLine(pub)})
				return nil
			}
			protected := "password-protected: keep it, and its password, to yourself"
			if noPassword {
				protected = "NOT password-protected: keep it to yourself"
			}
			fmt.Fprintf(a.streams.Out, "secret key:  %s (0600, %s)\npublic key:  %s (minisign: %s)\nfingerprint: %s\n\n", secret, protected, public, pubKeyLine(pub), fp)
			fmt.Fprintf(a.streams.Out, "Sign kits with\n  apimdev kit create -o kit.tar --sign %s …\nand give attendees the fingerprint: they load your kits with\n  apimdev up --kit kit.tar --trust %s …\n", secret, fp)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "write the secret key unencrypted (a warning says what that means)")
	return cmd
}

// pubKeyLine is the key line of a .pub file's text.
func pubKeyLine(pub []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	return lines[len(lines)-1]
}

// keyPrefix is PREFIX or -o PREFIX (the output flag, as kit create reads
// -o FILE), with a .key or .pub ending dropped; apimdev-kit when none is
// given.
func keyPrefix(cmd *cobra.Command, args []string) (string, error) {
	prefix := "apimdev-kit"
	if len(args) == 1 {
		prefix = args[0]
	}
	if v, _ := cmd.Flags().GetString("output"); cmd.Flags().Changed("output") && v != "text" && v != "json" {
		if len(args) == 1 {
			return "", &usageError{fmt.Sprintf("two key names: %s and -o %s", args[0], v)}
		}
		prefix = v
		if err := cmd.Flags().Set("output", "text"); err != nil {
			return "", err
		}
	}
	prefix = strings.TrimSuffix(strings.TrimSuffix(prefix, ".key"), ".pub")
	if prefix == "" || strings.HasSuffix(prefix, "/") || strings.HasSuffix(prefix, `\`) {
		return "", &usageError{fmt.Sprintf("-o %q: name the key, e.g. -o instructor (writes instructor.key and instructor.pub)", prefix)}
	}
	return prefix, nil
}

func (a *app) printManifest(path string, size int64, m kit.Manifest, signer string) {
	w := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
	if size > 0 {
		fmt.Fprintf(w, "kit %s: %s (%d bytes), made %s by apimdev %s\n", path, humanSize(size), size, m.Created.Format("2006-01-02 15:04 UTC"), m.Apimdev)
	} else {
		fmt.Fprintf(w, "kit %s: made %s by apimdev %s\n", path, m.Created.Format("2006-01-02 15:04 UTC"), m.Apimdev)
	}
	for _, i := range m.Images {
		note := ""
		if i.Role == kit.RoleDemo {
			note = "  (" + demo.Label + ")"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\tsha256:%s…%s\n", i.Role, i.Ref, humanSize(i.Size), i.SHA256[:12], note)
	}
	if m.Config != nil {
		fmt.Fprintf(w, "  config\t%s\t%d bytes\tsha256:%s…  (no token)\n", m.Config.Name, m.Config.Size, m.Config.SHA256[:12])
	}
	w.Flush()
	trust := "--allow-unsigned"
	if signer != "" {
		trust = "--trust " + signer
		fmt.Fprintf(a.streams.Out, "signed by %s (%s and %s in the kit)\n", signer, kit.SignatureFile, kit.SignerFile)
	} else {
		fmt.Fprintln(a.streams.Out, "not signed: it loads only with --allow-unsigned")
	}
	_, hasGW := m.Image(kit.RoleGateway)
	_, hasDemo := m.Image(kit.RoleDemo)
	fmt.Fprintln(a.streams.Out, "On each machine, with no network needed:")
	if hasDemo {
		fmt.Fprintf(a.streams.Out, "  apimdev up --kit %s %s --demo --detach\n", path, trust)
	}
	if hasGW {
		fmt.Fprintf(a.streams.Out, "  apimdev up --kit %s %s --token-file gw.token --detach\n", path, trust)
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
}
