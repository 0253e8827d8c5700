package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/certwright/certwright/internal/app"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// serverFlags are shared by init and serve; flags override DATA/config.yaml.
type serverFlags struct {
	dataDir, configFile, db, httpsListen, httpListen, publicHTTP, logLevel, defaultCA string
	tlsNames                                                                          listFlag
	org, rootKey, rootCN, issuingKey, issuingCN                                       string
	rootDays, issuingDays, tlsDays                                                    int
	acmeResolver                                                                      string
	acmeHTTP01Port, acmeTLSALPN01Port                                                 int
	noACME                                                                            noACMEFlag
	keyProvider, pkcs11Module, pkcs11Token, pkcs11PINFile                             string
	kekProvider, pkcs11KEKLabel                                                       string
	pkcs11KEKAdopt                                                                    bool
}

func (f *serverFlags) register(fs *flag.FlagSet, env func(string) string, withInit bool) {
	f.registerStore(fs, env)
	fs.StringVar(&f.httpsListen, "https-listen", "", "HTTPS API address (default 127.0.0.1:8443)")
	fs.StringVar(&f.httpListen, "http-listen", "", "plain-HTTP address for /crl, /ocsp, /ca, /healthz (default 127.0.0.1:8080)")
	fs.StringVar(&f.publicHTTP, "public-http-url", "", "base URL put in certificates for CRL/OCSP/caIssuers (default http://HTTP-LISTEN)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	fs.StringVar(&f.defaultCA, "default-ca", "", "CA that issues when a request names none (default: the issuing CA made at init)")
	fs.Var(&f.tlsNames, "tls-names", "comma-separated `NAMES` (host names, IP addresses) of the server's own certificate: the names clients reach the API by (default: the host of --public-http-url, localhost, 127.0.0.1, ::1)")
	fs.IntVar(&f.tlsDays, "tls-days", 0, "lifetime of the server's own TLS certificate in days (default 90)")
	fs.IntVar(&f.acmeHTTP01Port, "acme-http01-port", 0, "port ACME http-01 validation connects to (default 80)")
	fs.IntVar(&f.acmeTLSALPN01Port, "acme-tls-alpn01-port", 0, "port ACME tls-alpn-01 validation connects to (default 443)")
	fs.StringVar(&f.acmeResolver, "acme-resolver", "", "DNS server (ip:port) ACME validation asks (default /etc/hosts, then /etc/resolv.conf)")
	if withInit {
		fs.StringVar(&f.org, "org", "", "organisation name in the CA subjects (default Certwright)")
		fs.StringVar(&f.rootKey, "root-key", "", "root key algorithm: ecdsa-p256, ecdsa-p384, rsa-2048/3072/4096, ed25519 (default ecdsa-p384)")
		fs.StringVar(&f.rootCN, "root-cn", "", "root CA common name (default \"ORG Root CA\")")
		fs.IntVar(&f.rootDays, "root-days", 0, "root CA lifetime in days (default 3650)")
		fs.StringVar(&f.issuingKey, "issuing-key", "", "issuing CA key algorithm (default ecdsa-p256)")
		fs.StringVar(&f.issuingCN, "issuing-cn", "", "issuing CA common name (default \"ORG Issuing CA 1\")")
		fs.IntVar(&f.issuingDays, "issuing-days", 0, "issuing CA lifetime in days (default 1825)")
		fs.Var(&f.noACME, "acme", "create the ACME provisioner \"default\" (default true; --acme=false creates none)")
		fs.StringVar(&f.keyProvider, "key-provider", "", "where CA keys are made: software or pkcs11 (keys.ca_key_provider; default software)")
		f.registerPKCS11(fs)
		fs.StringVar(&f.kekProvider, "kek-provider", "", "where the key-encryption key is kept: file (DATA/kek, in the clear) or pkcs11 (DATA/kek.p11, sealed by an AES key in the token) (keys.kek_provider; default pkcs11 with --key-provider pkcs11, file otherwise)")
		fs.StringVar(&f.pkcs11KEKLabel, "pkcs11-kek-label", "", "`LABEL` of the token's AES key that seals the KEK (keys.pkcs11.kek_label; default certwright-kek); init generates it and refuses a label already taken")
		fs.BoolVar(&f.pkcs11KEKAdopt, "pkcs11-kek-adopt", false, "seal the KEK under the AES-256 key already in the token under --pkcs11-kek-label instead of generating one (it must be sensitive, never extractable, encrypt/decrypt only)")
	}
}

// registerPKCS11 registers the flags that name a PKCS#11 token.
func (f *serverFlags) registerPKCS11(fs *flag.FlagSet) {
	fs.StringVar(&f.pkcs11Module, "pkcs11-module", "", "absolute `PATH` of the PKCS#11 library (keys.pkcs11.module)")
	fs.StringVar(&f.pkcs11Token, "pkcs11-token", "", "`LABEL` of the PKCS#11 token (keys.pkcs11.token_label)")
	fs.StringVar(&f.pkcs11PINFile, "pkcs11-pin-file", "", "`FILE` (mode 0600) holding the token's user PIN (keys.pkcs11.pin_file); the PIN is never a flag")
}

// pkcs11Config is the token the --pkcs11 flags name (nil: none given).
func (f *serverFlags) pkcs11Config() (*config.PKCS11Config, error) {
	if f.pkcs11Module == "" && f.pkcs11Token == "" && f.pkcs11PINFile == "" {
		return nil, nil
	}
	pc := &config.PKCS11Config{Module: f.pkcs11Module, TokenLabel: f.pkcs11Token}
	if err := f.setPINFile(pc); err != nil {
		return nil, err
	}
	return pc, nil
}

// setPINFile sets pc's pin_file from --pkcs11-pin-file, made absolute:
// the flag is relative to where the command runs, not to the data
// directory (as a relative pin_file in the file is).
func (f *serverFlags) setPINFile(pc *config.PKCS11Config) error {
	if f.pkcs11PINFile == "" {
		return nil
	}
	abs, err := filepath.Abs(f.pkcs11PINFile)
	if err != nil {
		return fmt.Errorf("--pkcs11-pin-file: %w", err)
	}
	pc.PINFile = abs
	return nil
}

// registerStore registers the flags that find the data directory, its
// configuration and its database (all a local command such as backup needs).
func (f *serverFlags) registerStore(fs *flag.FlagSet, env func(string) string) {
	dd := env("CERTWRIGHT_DATA_DIR")
	if dd == "" {
		dd = "certwright-data"
	}
	fs.StringVar(&f.dataDir, "data-dir", dd, "data directory (env CERTWRIGHT_DATA_DIR)")
	fs.StringVar(&f.configFile, "config", "", "configuration file (default DATA/config.yaml)")
	fs.StringVar(&f.db, "db", env("CERTWRIGHT_DB"), "store: postgres://... (default SQLite in the data directory; env CERTWRIGHT_DB)")
}

// config merges DATA/config.yaml (or --config) and the flags, lets ask
// fill in what is still unset, then applies defaults and validates.
func (f *serverFlags) config(ask func(*config.Config) error) (*config.Config, error) {
	cfg := &config.Config{}
	path := f.configFile
	if path == "" {
		path = filepath.Join(f.dataDir, config.FileName)
	}
	if err := cfg.Load(path); err != nil {
		return nil, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	cfg.DataDir = f.dataDir
	set(&cfg.DB, f.db)
	set(&cfg.HTTPSListen, f.httpsListen)
	set(&cfg.HTTPListen, f.httpListen)
	set(&cfg.PublicHTTPURL, f.publicHTTP)
	if len(f.tlsNames) > 0 {
		cfg.TLSNames = f.tlsNames
	}
	set(&cfg.LogLevel, f.logLevel)
	set(&cfg.DefaultCA, f.defaultCA)
	setInt(&cfg.TLSValidityDays, f.tlsDays)
	setInt(&cfg.ACME.HTTP01Port, f.acmeHTTP01Port)
	setInt(&cfg.ACME.TLSALPN01Port, f.acmeTLSALPN01Port)
	set(&cfg.ACME.Resolver, f.acmeResolver)
	set(&cfg.Init.Organization, f.org)
	set(&cfg.Init.RootKey, f.rootKey)
	set(&cfg.Init.RootCommonName, f.rootCN)
	setInt(&cfg.Init.RootValidityDays, f.rootDays)
	set(&cfg.Init.IssuingKey, f.issuingKey)
	set(&cfg.Init.IssuingCommonName, f.issuingCN)
	setInt(&cfg.Init.IssuingValidityDays, f.issuingDays)
	cfg.Init.SkipACMEProvisioner = cfg.Init.SkipACMEProvisioner || bool(f.noACME)
	set(&cfg.Keys.CAKeyProvider, f.keyProvider)
	set(&cfg.Keys.KEKProvider, f.kekProvider)
	// A new instance with its CA keys in the token keeps its KEK there
	// too, unless asked not to (an existing one keeps its KEK where it
	// is: keys seal-kek moves it).
	if f.keyProvider == config.KeyProviderPKCS11 && cfg.Keys.KEKProvider == "" && !app.Exists(cfg.DataDir) {
		cfg.Keys.KEKProvider = config.KEKProviderPKCS11
	}
	set(&cfg.Keys.PKCS11.KEKLabel, f.pkcs11KEKLabel)
	if f.pkcs11KEKAdopt {
		if !cfg.Keys.KEKInToken() {
			return nil, errors.New("--pkcs11-kek-adopt is for a key-encryption key in the token (--kek-provider pkcs11)")
		}
		cfg.Init.AdoptTokenKEK = true
	}
	set(&cfg.Keys.PKCS11.Module, f.pkcs11Module)
	set(&cfg.Keys.PKCS11.TokenLabel, f.pkcs11Token)
	if err := f.setPINFile(&cfg.Keys.PKCS11); err != nil {
		return nil, err
	}
	if ask != nil {
		if err := ask(cfg); err != nil {
			return nil, err
		}
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	log, _ := newLevelLogger(w, level)
	return log
}

// newLevelLogger returns a logger whose level a reload can change.
func newLevelLogger(w io.Writer, level string) (*slog.Logger, *slog.LevelVar) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	lv := new(slog.LevelVar)
	lv.Set(l)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), lv
}

// parseServerFlags parses the flags of init or serve into a validated
// configuration; ask, when not nil, fills in settings neither the flags nor
// the file gave, before defaults apply.
func parseServerFlags(name string, args []string, stderr io.Writer, env func(string) string, withInit bool, ask func(*config.Config) error) (*config.Config, error) {
	f, err := parseServerFlagSet(name, args, stderr, env, withInit)
	if err != nil {
		return nil, err
	}
	return f.config(ask)
}

// parseServerFlagSet parses init's or serve's flags; f.config then reads
// the configuration they name (again on each reload).
func parseServerFlagSet(name string, args []string, stderr io.Writer, env func(string) string, withInit bool) (*serverFlags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serverFlags
	f.register(fs, env, withInit)
	if len(args) != 1 || (args[0] != "--help" && args[0] != "-h") {
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{hintError{err: err, hint: "run \"certwright " + name + " --help\" for usage"}}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return &f, nil
}

func printInit(w io.Writer, cfg *config.Config, res *app.InitResult) {
	fmt.Fprintf(w, "Initialised data directory %s\n", res.DataDir)
	fmt.Fprintf(w, "  organisation:                %s\n", cfg.Init.Organization)
	fmt.Fprintf(w, "  public URL (CRL, OCSP):      %s\n", cfg.PublicHTTPURL)
	fmt.Fprintf(w, "  server certificate names:    %s\n", strings.Join(cfg.TLSNames, ", "))
	fmt.Fprintf(w, "  root CA SHA-256 fingerprint: %s\n", res.RootFingerprint)
	fmt.Fprintf(w, "  admin token written to:      %s (mode 0600)\n", res.TokenPath)
	if cfg.Keys.KEKInToken() {
		fmt.Fprintf(w, "  key-encryption key:          %s, sealed by the token's key %q (useless without the token and its PIN)\n", cfg.KEKPath(), cfg.Keys.PKCS11.KEKLabelOrDefault())
	} else {
		fmt.Fprintf(w, "  key-encryption key:          %s (mode 0600; keep it apart from backups)\n", cfg.KEKPath())
	}
	fmt.Fprintf(w, "  root certificate:            %s\n", filepath.Join(res.DataDir, app.RootFile))
}

// runInit implements "certwright init". On a terminal it asks for the
// organisation and public URL when neither flags nor file gave them;
// otherwise (a script, a service, stdin from /dev/null) it never asks.
func runInit(ctx context.Context, stdin io.Reader, args []string, stdout, stderr io.Writer, env func(string) string) error {
	var ask func(*config.Config) error
	if isTerminal(stdin) {
		ask = func(c *config.Config) error {
			if app.Exists(c.DataDir) {
				return nil // Init refuses it, with the reason
			}
			return askIdentity(ctx, stdin, stderr, c)
		}
	}
	cfg, err := parseServerFlags("init", args, stderr, env, true, ask)
	if err != nil {
		return err
	}
	res, err := app.Init(ctx, cfg, newLogger(stderr, cfg.LogLevel), clock.Real{})
	if err != nil {
		if errors.Is(err, app.ErrExists) {
			return &hintError{err: err, hint: "to run the existing instance, use `certwright serve --data-dir " + cfg.DataDir + "`"}
		}
		return err
	}
	printInit(stdout, cfg, res)
	return nil
}

// runServe implements "certwright serve": it initialises the data directory
// on first start, then serves until interrupted, re-reading its
// configuration on SIGHUP.
func runServe(ctx context.Context, _ io.Reader, args []string, stdout, stderr io.Writer, env func(string) string) error {
	// From here on SIGHUP reloads instead of ending the process; one that
	// arrives before serving starts is taken up once it does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	app.SetServeGCTarget(env)
	return serve(ctx, args, stdout, stderr, env, hup)
}

// serve is runServe with the reload signal given (tests send their own).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string, hup <-chan os.Signal) error {
	f, err := parseServerFlagSet("serve", args, stderr, env, true)
	if err != nil {
		return err
	}
	cfg, err := f.config(nil)
	if err != nil {
		return err
	}
	log, level := newLevelLogger(stderr, cfg.LogLevel)
	if !app.Exists(cfg.DataDir) {
		res, err := app.Init(ctx, cfg, log, clock.Real{})
		if err != nil {
			return err
		}
		printInit(stdout, cfg, res)
	}
	a, err := app.Open(ctx, cfg, log, clock.Real{})
	if err != nil {
		return err
	}
	defer a.Close()
	fp, err := a.RootFingerprint(ctx)
	if err != nil {
		return err
	}
	rctx, stopReload := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		a.NewReloader(level, func() (*config.Config, error) { return f.config(nil) }).Run(rctx, hup)
	}()
	defer func() {
		stopReload()
		<-reloaded
	}()
	return a.Run(ctx, func(l app.Listening) {
		b := banner{
			dataDir: cfg.DataDir, store: app.StoreLocation(cfg), httpsURL: l.HTTPSURL, httpURL: l.HTTPURL,
			fingerprint: fp, token: filepath.Join(cfg.DataDir, app.TokenFile), trial: app.IsTrial(cfg),
		}
		dirs, derr := a.ACMEDirectories(ctx, l.HTTPSURL)
		if derr != nil {
			log.Warn("cannot list ACME provisioners for the banner", "err", derr)
		}
		b.acme = dirs
		printBanner(stdout, b)
	})
}

// banner is what serve prints once it listens.
type banner struct {
	dataDir, store, httpsURL, httpURL, fingerprint, token string
	// acme lists the ACME directory URLs.
	acme []string
	// trial: the default organisation and loopback revocation URLs.
	trial bool
}

// maxBannerACME bounds the ACME directories the banner lists.
const maxBannerACME = 3

func printBanner(w io.Writer, b banner) {
	fmt.Fprintf(w, "Certwright is serving\n")
	fmt.Fprintf(w, "  data directory:              %s\n", b.dataDir)
	fmt.Fprintf(w, "  store:                       %s\n", b.store)
	fmt.Fprintf(w, "  API (HTTPS):                 %s\n", b.httpsURL)
	fmt.Fprintf(w, "  revocation data (HTTP):      %s\n", b.httpURL)
	if len(b.acme) == 0 {
		fmt.Fprintf(w, "  ACME directory:              none (certwright acme create NAME --ca issuing --profile web_server)\n")
	}
	for i, d := range b.acme {
		if i == maxBannerACME {
			fmt.Fprintf(w, "                               and %d more (certwright acme list)\n", len(b.acme)-i)
			break
		}
		fmt.Fprintf(w, "  ACME directory:              %s\n", d)
	}
	fmt.Fprintf(w, "  root CA SHA-256 fingerprint: %s\n", b.fingerprint)
	fmt.Fprintf(w, "  admin token:                 %s\n", b.token)
	if b.trial {
		fmt.Fprintf(w, "This is a local trial CA (organisation and URLs left at their defaults): only this machine can check its revocation data. For a real one, init a new data directory: certwright init --data-dir DIR --org NAME --public-http-url http://HOST:8080 --tls-names HOST\n")
	}
}
