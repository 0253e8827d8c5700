package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/app"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/store"
)

// rotateKEKCommand is "certwright keys rotate-kek": offline, on the
// server host, with every server of the instance stopped.
func rotateKEKCommand() *command {
	return &command{
		name: "rotate-kek", summary: "re-wrap every key and sealed secret under a new key-encryption key (servers stopped)",
		args:    "[--data-dir DIR] [--config FILE] [--db URL] [--json]",
		example: "certwright keys rotate-kek --data-dir ./certwright-data",
		more: "Stop serve first (on PostgreSQL: every replica); the command refuses while one runs.\n" +
			"Writes a new KEK to KEK.new, re-wraps every key (CAs, OCSP responders, audit keys, the server's and\n" +
			"managed certificates' keys) and re-seals every ACME EAB key under it in one database transaction with an\n" +
			"audit event, then keeps the old KEK as KEK.old-TIMESTAMP (backups made before need it: restore --kek)\n" +
			"and puts the new one in place. Interrupted, run it again: it resumes; serve refuses to start meanwhile\n" +
			"when the database already moved. On PostgreSQL, copy the new KEK to every replica's data directory.",
		keyMaterial: true,
		run:         runRotateKEK,
	}
}

// rotateKEKJSON is the --json output of keys rotate-kek.
type rotateKEKJSON struct {
	OldKEK     string         `json:"old_kek"`
	NewKEK     string         `json:"new_kek"`
	KEKFile    string         `json:"kek_file"`
	OldKEKFile string         `json:"old_kek_file"`
	Found      map[string]int `json:"found"`
	Rewrapped  map[string]int `json:"rewrapped"`
	Left       []string       `json:"left,omitempty"`
	Resumed    bool           `json:"resumed"`
	FilesOnly  bool           `json:"files_only"`
}

func runRotateKEK(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("keys rotate-kek", flag.ContinueOnError)
	var sf serverFlags
	sf.registerStore(fs, r.getenv)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	cfg, err := sf.config(nil)
	if err != nil {
		return err
	}
	res, err := app.RotateKEK(ctx, cfg, newLogger(r.stderr, "warn"), clock.Real{}, app.RotateKEKOptions{})
	if err != nil {
		return rotateKEKHint(err)
	}
	if *asJSON {
		return printJSON(r.stdout, rotateKEKJSON{OldKEK: res.From, NewKEK: res.To, KEKFile: res.KEKFile, OldKEKFile: res.OldKEKFile,
			Found: res.Found, Rewrapped: res.Rewrapped, Left: res.Left, Resumed: res.Resumed, FilesOnly: res.FilesOnly})
	}
	w := r.stdout
	switch {
	case res.FilesOnly:
		fmt.Fprintf(w, "Finished an interrupted KEK rotation: the database was already under the new KEK; the files are now in place.\n")
	case res.Resumed:
		fmt.Fprintf(w, "Rotated the KEK (resuming an interrupted run, with the new KEK it had written).\n")
	default:
		fmt.Fprintf(w, "Rotated the KEK.\n")
	}
	fmt.Fprintf(w, "  old KEK:  %s, kept in %s (mode 0600)\n", res.From, res.OldKEKFile)
	fmt.Fprintf(w, "  new KEK:  %s, in %s (mode 0600)\n", res.To, res.KEKFile)
	if !res.FilesOnly {
		kinds := slices.Sorted(maps.Keys(res.Found))
		parts := make([]string, 0, len(kinds))
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %d/%d", k, res.Rewrapped[k], res.Found[k]))
		}
		fmt.Fprintf(w, "  re-wrapped (kind moved/found): %s\n", strings.Join(parts, ", "))
	}
	if len(res.Left) > 0 {
		fmt.Fprintf(w, "  left as they were (they do not open under the old KEK either; see the log above): %s\n", strings.Join(res.Left, ", "))
	}
	fmt.Fprintf(w, "\nBackups made before now need the old KEK: certwright restore FILE --kek %s ...\n", res.OldKEKFile)
	fmt.Fprintf(w, "Replace every protected copy of the KEK with the new one; on PostgreSQL copy %s to every replica's\n", res.KEKFile)
	fmt.Fprintf(w, "data directory before starting it. Then start the server: certwright serve --data-dir %s\n", cfg.DataDir)
	return nil
}

// rotateKEKHint adds what to do about a refused rotation.
func rotateKEKHint(err error) error {
	var live *store.LiveReplicasError
	var hint string
	switch {
	case errors.As(err, &live):
		hint = "stop every replica named (systemctl stop certwright, or SIGTERM), wait until none was seen for 15 s, then run rotate-kek again"
	case errors.Is(err, app.ErrServerRunning):
		hint = "stop certwright serve on this data directory (SIGTERM), then run rotate-kek again"
	case errors.Is(err, store.ErrOtherKEK):
		hint = "the KEK file here is not this database's KEK: use the data directory (or kek_file) of the instance, or, if another replica's data directory finished a rotation, copy its KEK here"
	default:
		return err
	}
	return &hintError{err: err, hint: hint}
}

// sealKEKCommand is "certwright keys seal-kek": offline, on the server
// host, with the server stopped.
func sealKEKCommand() *command {
	return &command{
		name: "seal-kek", summary: "move the key-encryption key file into the PKCS#11 token (sealed there; servers stopped)",
		args:    "[--data-dir DIR] [--config FILE] [--db URL] [--pkcs11-module PATH --pkcs11-token LABEL --pkcs11-pin-file FILE] [--pkcs11-kek-label LABEL] [--pkcs11-kek-adopt] [--json]",
		example: "certwright keys seal-kek --data-dir ./certwright-data --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token certwright --pkcs11-pin-file pin",
		more: "Stop serve first (on PostgreSQL: every replica); the command refuses while one runs on the data directory.\n" +
			"Generates an AES-256 key in the token (keys.pkcs11.kek_label, default certwright-kek; --pkcs11-kek-adopt uses\n" +
			"the one already there), seals the KEK under it into DATA/kek.p11 (and the old KEKs a rotation kept into\n" +
			"kek.p11.old-*), checks each opens to the same key, switches the configuration file to keys.kek_provider\n" +
			"pkcs11 (with the --pkcs11 flags' token), records an audit event, then overwrites and removes the plain KEK\n" +
			"files. The KEK does not change: backups and escrow sets still open with it. Use it after keys recover\n" +
			"(which restores a plain KEK) and to move an existing instance's KEK into a token.\n" +
			"Interrupted, run it again: it uses a DATA/kek.p11 already written if it opens to the same KEK, and once the\n" +
			"configuration was switched it only removes the plain KEK files left (each checked to hold the sealed KEK).",
		keyMaterial: true,
		run:         runSealKEK,
	}
}

// sealKEKJSON is the --json output of keys seal-kek.
type sealKEKJSON struct {
	SealedFile string   `json:"sealed_file"`
	TokenKEK   string   `json:"token_kek_label"`
	Generated  bool     `json:"generated"`
	KEK        string   `json:"kek"`
	SealedOld  []string `json:"sealed_old,omitempty"`
	Removed    []string `json:"removed"`
	NotRemoved []string `json:"not_removed,omitempty"`
	ConfigFile string   `json:"config_file"`
	Resumed    bool     `json:"resumed"`
}

func runSealKEK(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("keys seal-kek", flag.ContinueOnError)
	var sf serverFlags
	sf.registerStore(fs, r.getenv)
	sf.registerPKCS11(fs)
	label := fs.String("pkcs11-kek-label", "", "`LABEL` of the token's AES key that seals the KEK (keys.pkcs11.kek_label; default certwright-kek)")
	adopt := fs.Bool("pkcs11-kek-adopt", false, "seal under the AES-256 key already in the token under the label instead of generating one")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	cfg, err := sf.config(nil)
	if err != nil {
		return err
	}
	if *label != "" {
		cfg.Keys.PKCS11.KEKLabel = *label
	}
	res, err := app.SealKEK(ctx, cfg, newLogger(r.stderr, "warn"), clock.Real{}, app.SealKEKOptions{ConfigFile: sf.configFile, Adopt: *adopt})
	if err != nil {
		if errors.Is(err, app.ErrServerRunning) {
			return &hintError{err: err, hint: "stop certwright serve on this data directory (SIGTERM), then run seal-kek again"}
		}
		return err
	}
	if *asJSON {
		return printJSON(r.stdout, sealKEKJSON{SealedFile: res.SealedFile, TokenKEK: res.Label, Generated: res.Generated, KEK: res.Fingerprint,
			SealedOld: res.SealedOld, Removed: res.Removed, NotRemoved: res.NotRemoved, ConfigFile: res.ConfigFile, Resumed: res.Resumed})
	}
	w := r.stdout
	how := "adopted"
	if res.Generated {
		how = "generated"
	}
	fmt.Fprintf(w, "Sealed the KEK %s in the PKCS#11 token.\n", res.Fingerprint)
	if res.Resumed {
		fmt.Fprintf(w, "  (an interrupted seal-kek finished: what it had sealed was checked and used)\n")
		how = "already there"
	}
	fmt.Fprintf(w, "  token key:    %q (%s; sensitive, never extractable)\n", res.Label, how)
	fmt.Fprintf(w, "  sealed KEK:   %s (mode 0600; opens only in the token, after logging in)\n", res.SealedFile)
	for _, p := range res.SealedOld {
		fmt.Fprintf(w, "  old KEK:      %s (sealed)\n", p)
	}
	fmt.Fprintf(w, "  config:       %s now says keys.kek_provider: pkcs11\n", res.ConfigFile)
	fmt.Fprintf(w, "  removed:      %s (overwritten, then deleted)\n", strings.Join(res.Removed, ", "))
	if len(res.NotRemoved) > 0 {
		fmt.Fprintf(w, "  NOT removed:  %s: delete these plain KEK files yourself\n", strings.Join(res.NotRemoved, ", "))
	}
	fmt.Fprintf(w, "\nProtected copies of the plain KEK elsewhere still open every key: destroy them, or keep them as\n")
	fmt.Fprintf(w, "carefully as before (escrow sets hold the KEK too). Start the server: certwright serve --data-dir %s\n", cfg.DataDir)
	return nil
}
