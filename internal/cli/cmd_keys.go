package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/app"
	"github.com/certwright/certwright/internal/backup"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/escrow"
)

// keysCommands are "certwright keys ...": local, on the server host.
func keysCommands() []*command {
	return []*command{
		{
			name: "backup", summary: "escrow the KEK and every software key: a bundle and N Shamir shares, M of which recover it",
			args:    "--shares N --threshold M --out DIR [--data-dir DIR] [--config FILE] [--db URL] [--json]",
			example: "certwright keys backup --data-dir ./certwright-data --shares 5 --threshold 3 --out ./escrow",
			more: "Runs on the server host, reading the data directory serve uses; the server keeps running.\n" +
				"Writes DIR (mode 0700, new or empty) holding keys.escrow, the key-encryption key and every software-wrapped\n" +
				"key encrypted under a fresh random backup key, and share-I-of-N.txt (mode 0600), the backup key split so\n" +
				"that any M shares reconstruct it and M-1 say nothing about it. Give each share to a different custodian\n" +
				"on separate offline media and remove it from DIR; keep keys.escrow with the backups. Keys in an HSM are not\n" +
				"exportable and not in the bundle. The backup is recorded in the audit log (set ID, counts; never a key).\n\n" +
				"The drill, which proves M shares open the set and its KEK opens every key of the instance, touching no live key:\n" +
				"  certwright keys backup verify --bundle DIR/keys.escrow --share FILE --share FILE ... (see its --help)",
			run: runKeysBackup, keyMaterial: true,
		},
		{
			name: "recover", summary: "rebuild a data directory from a backup with the KEK reconstructed from escrow shares",
			args:    "--bundle FILE --share FILE... --backup FILE --data-dir DIR [--db URL] [--admin-token FILE] [--json]",
			example: "certwright keys recover --bundle escrow/keys.escrow --share s1.txt --share s2.txt --share s3.txt \\\n    --backup certwright-backup.tar.gz --data-dir ./restored",
			more: "Reads the shares (--share once per file, at least the threshold), reconstructs the backup key, decrypts the\n" +
				"bundle and checks its KEK opens every escrowed key, then restores --backup (a certwright backup bundle of the\n" +
				"same instance, older or newer than the escrow set) into DIR exactly as certwright restore does with --kek.\n" +
				"Too few shares, a damaged share (named), shares of another set or a changed bundle are refused before\n" +
				"anything is written. The recovery is recorded in the restored instance's audit log.",
			run: runKeysRecover, keyMaterial: true,
		},
		rotateKEKCommand(),
		sealKEKCommand(),
	}
}

// keysVerifyCommand is "certwright keys backup verify", reached through
// keys backup (which is itself a command).
func keysVerifyCommand() *command {
	return &command{
		name: "verify", summary: "recovery drill: prove the shares open the escrow set and its KEK opens every key, touching no live key",
		args:    "--bundle FILE --share FILE... [--data-dir DIR] [--config FILE] [--db URL] [--json]",
		example: "certwright keys backup verify --bundle escrow/keys.escrow --share s1.txt --share s2.txt --share s3.txt",
		more: "Reconstructs the backup key from the shares, decrypts the bundle, and checks that the escrowed KEK opens every\n" +
			"escrowed key and every software key in the instance's database now (so the set still recovers it). It never\n" +
			"reads the live KEK and writes nothing but the drill's audit event, recorded whether it passes or fails.",
		run: runKeysVerify, keyMaterial: true,
	}
}

// pathsFlag collects a repeated file flag (paths may hold commas).
type pathsFlag []string

func (p *pathsFlag) String() string { return strings.Join(*p, " ") }

func (p *pathsFlag) Set(s string) error {
	*p = append(*p, s)
	return nil
}

// keysBackupJSON is the --json output of keys backup.
type keysBackupJSON struct {
	Dir           string         `json:"dir"`
	Bundle        string         `json:"bundle"`
	Shares        []string       `json:"shares"`
	Header        *escrow.Header `json:"header"`
	Unusable      []string       `json:"unusable,omitempty"`
	NotExportable []string       `json:"not_exportable,omitempty"`
}

func runKeysBackup(ctx context.Context, r *runner, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		r.path, r.cmd = append(r.path, "verify"), keysVerifyCommand()
		return runKeysVerify(ctx, r, args[1:])
	}
	fs := flag.NewFlagSet("keys backup", flag.ContinueOnError)
	var sf serverFlags
	sf.registerStore(fs, r.getenv)
	shares := fs.Int("shares", 0, "number of shares `N` to make (2-255), one per custodian")
	threshold := fs.Int("threshold", 0, "number of shares `M` that recover the keys (2-N)")
	out := fs.String("out", "", "directory `DIR` to write the bundle and shares into (new or empty)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return r.usagef("--out DIR is required: where to write the bundle and the shares")
	case *shares == 0 || *threshold == 0:
		return r.usagef("--shares N and --threshold M are required: how many custodians get a share, and how many of them recover the keys")
	}
	cfg, err := sf.config(nil)
	if err != nil {
		return err
	}
	res, err := app.KeysBackup(ctx, cfg, app.KeysBackupOptions{OutDir: *out, Shares: *shares, Threshold: *threshold, Version: currentVersion().Version}, clock.Real{})
	if errors.Is(err, escrow.ErrCounts) {
		return r.usagef("%v", err)
	}
	if err != nil {
		return escrowHint(err)
	}
	if *asJSON {
		return printJSON(r.stdout, keysBackupJSON{Dir: res.Dir, Bundle: res.Bundle, Shares: res.ShareFiles, Header: res.Header,
			Unusable: res.Unusable, NotExportable: res.NotExportable})
	}
	h := res.Header
	w := r.stdout
	fmt.Fprintf(w, "Escrow set %s written to %s (mode 0700, files 0600)\n", h.SetID, res.Dir)
	fmt.Fprintf(w, "  bundle: %s: the key-encryption key and %d wrapped keys, encrypted; useless without %d shares\n", res.Bundle, len(h.Keys), h.Threshold)
	fmt.Fprintf(w, "  shares: %d of these %d recover it, %d say nothing:\n", h.Threshold, h.Shares, h.Threshold-1)
	for _, s := range res.ShareFiles {
		fmt.Fprintf(w, "    %s\n", s)
	}
	fmt.Fprintf(w, "\nGive each share to a different custodian, on separate offline media, and remove it from %s.\n", res.Dir)
	fmt.Fprintf(w, "Keep the bundle with your backups, never with %d shares. Test the set now, and at every drill:\n", h.Threshold)
	sh := make([]string, 0, h.Threshold)
	for _, s := range res.ShareFiles[:h.Threshold] {
		sh = append(sh, "--share "+s)
	}
	fmt.Fprintf(w, "  certwright keys backup verify --data-dir %s --bundle %s %s\n", cfg.DataDir, res.Bundle, strings.Join(sh, " "))
	for _, u := range res.Unusable {
		fmt.Fprintf(w, "warning: the key of %s does not open with the KEK (an altered record the server does not use either); escrowed as it is\n", u)
	}
	if len(res.NotExportable) > 0 {
		fmt.Fprintf(w, "\nNot in the bundle (not exportable; back them up with the HSM vendor's tools): %s\n", strings.Join(res.NotExportable, ", "))
	}
	return nil
}

// keysVerifyJSON is the --json output of keys backup verify.
type keysVerifyJSON struct {
	Header       *escrow.Header `json:"header"`
	SharesGiven  int            `json:"shares_given"`
	Escrowed     int            `json:"escrowed_keys_open"`
	Unusable     []string       `json:"escrowed_unusable,omitempty"`
	Live         int            `json:"live_keys_open"`
	NotInSet     int            `json:"live_keys_not_in_set"`
	LiveUnusable []string       `json:"live_unusable,omitempty"`
}

func runKeysVerify(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("keys backup verify", flag.ContinueOnError)
	var sf serverFlags
	sf.registerStore(fs, r.getenv)
	bundle := fs.String("bundle", "", "the escrow bundle `FILE` (keys.escrow)")
	var shares pathsFlag
	fs.Var(&shares, "share", "a share `FILE` (repeat for each: at least the threshold)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if *bundle == "" {
		return r.usagef("--bundle FILE is required: the keys.escrow file keys backup wrote")
	}
	cfg, err := sf.config(nil)
	if err != nil {
		return err
	}
	res, err := app.KeysVerify(ctx, cfg, app.KeysVerifyOptions{Bundle: *bundle, Shares: shares}, clock.Real{})
	if err != nil {
		return escrowHint(err)
	}
	if *asJSON {
		return printJSON(r.stdout, keysVerifyJSON{Header: res.Header, SharesGiven: res.SharesGiven, Escrowed: res.Escrowed,
			Unusable: res.Unusable, Live: res.Live, NotInSet: res.NotInSet, LiveUnusable: res.LiveUnusable})
	}
	h := res.Header
	w := r.stdout
	fmt.Fprintf(w, "Drill passed: escrow set %s (made %s, %d of %d shares) recovers this instance\n", h.SetID, h.Created.Format("2006-01-02 15:04:05 MST"), h.Threshold, h.Shares)
	fmt.Fprintf(w, "  shares given:        %d, checked and combined; the bundle decrypted and authenticated\n", res.SharesGiven)
	fmt.Fprintf(w, "  escrowed keys:       %d of %d open with the escrowed KEK\n", res.Escrowed, len(h.Keys))
	fmt.Fprintf(w, "  instance keys now:   %d open with the escrowed KEK (%d made after the set: in the database and its backups)\n", res.Live, res.NotInSet)
	for _, u := range res.Unusable {
		fmt.Fprintf(w, "warning: the escrowed key of %s does not open (escrowed as it was: an altered record)\n", u)
	}
	for _, u := range res.LiveUnusable {
		fmt.Fprintf(w, "warning: the key of %s in the database does not open (an altered record the server does not use either)\n", u)
	}
	fmt.Fprintf(w, "Recorded in the audit log. No live key was read.\n")
	return nil
}

// keysRecoverJSON is the --json output of keys recover.
type keysRecoverJSON struct {
	DataDir         string `json:"data_dir"`
	RootFingerprint string `json:"root_fingerprint"`
	DB              string `json:"db"`
	AdminToken      string `json:"admin_token,omitempty"`
	kekJSON
	Escrow   *escrow.Header   `json:"escrow"`
	Manifest *backup.Manifest `json:"manifest"`
}

func runKeysRecover(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("keys recover", flag.ContinueOnError)
	bundle := fs.String("bundle", "", "the escrow bundle `FILE` (keys.escrow)")
	var shares pathsFlag
	fs.Var(&shares, "share", "a share `FILE` (repeat for each: at least the threshold)")
	bak := fs.String("backup", "", "the certwright backup bundle `FILE` to restore (a backup of the same instance)")
	dataDir := fs.String("data-dir", "", "data `DIR` to create (must not exist, or be empty)")
	token := fs.String("admin-token", "", "`FILE` to copy to DIR/admin.token (optional)")
	db := fs.String("db", "", "PostgreSQL `URL` of the database the dump was restored into (PostgreSQL backups)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *bundle == "":
		return r.usagef("--bundle FILE is required: the keys.escrow file keys backup wrote")
	case *bak == "":
		return r.usagef("--backup FILE is required: the certwright backup bundle to restore (the escrow set holds the keys, the backup the database)")
	case *dataDir == "":
		return r.usagef("--data-dir DIR is required: the new data directory to restore into")
	}
	res, err := app.KeysRecover(ctx, app.KeysRecoverOptions{
		Bundle: *bundle, Shares: shares, Backup: *bak, DataDir: *dataDir, DB: *db, AdminTokenFile: *token,
	}, newLogger(r.stderr, "warn"), clock.Real{})
	switch {
	case errors.Is(err, app.ErrWrongBundleKEK):
		return &hintError{err: err, hint: "pass with --backup a certwright backup of the instance this escrow set was made from"}
	case err != nil:
		if h := escrowHint(err); h != err {
			return h
		}
		return restoreHint(err)
	}
	rr := res.Restore
	if *asJSON {
		return printJSON(r.stdout, keysRecoverJSON{DataDir: rr.DataDir, RootFingerprint: rr.RootFingerprint, DB: rr.DB, AdminToken: rr.TokenPath,
			kekJSON: restoredKEK(rr), Escrow: res.Header, Manifest: rr.Manifest})
	}
	w := r.stdout
	fmt.Fprintf(w, "Recovered the key-encryption key from %d shares of escrow set %s (%d of %d escrowed keys open)\n",
		len(shares), res.Header.SetID, res.Escrowed, len(res.Header.Keys))
	printRestored(w, *bak, rr)
	fmt.Fprintf(w, "Then make a new escrow set (the shares used here were in one place): certwright keys backup --data-dir %s --shares N --threshold M --out DIR\n", rr.DataDir)
	return nil
}

// escrowHint adds what to do about a refused escrow operation.
func escrowHint(err error) error {
	var hint string
	switch {
	case errors.Is(err, escrow.ErrTooFewShares):
		hint = "pass --share once for each share file, at least as many as the set's threshold"
	case errors.Is(err, escrow.ErrShare):
		hint = "that share file is damaged or mistyped: use the custodian's other copy, or another custodian's share"
	case errors.Is(err, escrow.ErrWrongSet), errors.Is(err, escrow.ErrShareMismatch):
		hint = "use the shares made together with this bundle (their Set header is the bundle's set_id: head -2 BUNDLE)"
	case errors.Is(err, escrow.ErrDuplicateShare):
		hint = "each share counts once: bring another custodian's share"
	case errors.Is(err, escrow.ErrOpen), errors.Is(err, escrow.ErrBundle):
		hint = "the bundle was changed or damaged: use another copy of it"
	case errors.Is(err, app.ErrEscrowMismatch):
		hint = "use the escrow set of this instance, or make a new one with certwright keys backup"
	case errors.Is(err, app.ErrExists):
		hint = "choose a new, empty directory"
	default:
		return err
	}
	return &hintError{err: err, hint: hint}
}
