package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/certwright/certwright/internal/app"
	"github.com/certwright/certwright/internal/config"
)

// configCommands are the config subcommands.
func configCommands() []*command {
	return []*command{
		{
			name: "check", summary: "validate a configuration file offline, as serve reads it at start or on SIGHUP",
			args:    "[FILE] [--data-dir DIR] [--json]",
			example: "certwright config check certwright-data/config.yaml",
			more: "FILE defaults to DIR/config.yaml. Relative paths in the file (alert channels' secret, password and CA files)\n" +
				"are read from the data directory: --data-dir, else $CERTWRIGHT_DATA_DIR when FILE is not given, else FILE's directory.\n" +
				"Exit status 0 when the file is valid; otherwise every problem is printed with its line and key.",
			run: runConfigCheck,
		},
	}
}

// configCheckJSON is config check's --json output.
type configCheckJSON struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
}

func runConfigCheck(_ context.Context, r *runner, args []string) error {
	fset := flag.NewFlagSet("config check", flag.ContinueOnError)
	dataDir := fset.String("data-dir", "", "data `DIR` the file's relative paths are in (default: $CERTWRIGHT_DATA_DIR or ./certwright-data without FILE, FILE's directory with it)")
	asJSON := fset.Bool("json", false, "print the result as JSON")
	pos, err := r.parse(fset, args, "[FILE]")
	if err != nil {
		return err
	}
	dir := *dataDir
	var path string
	if len(pos) == 1 {
		path = pos[0]
		if dir == "" {
			dir = filepath.Dir(path)
		}
	} else {
		if dir == "" {
			dir = firstNonEmpty(r.getenv("CERTWRIGHT_DATA_DIR"), defaultDataDir)
		}
		path = filepath.Join(dir, config.FileName)
	}
	if _, err := app.CheckConfig(path, dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &hintError{err: err, hint: "give the file to check (certwright config check FILE) or the data directory holding config.yaml (--data-dir DIR); without a file serve runs on the defaults"}
		}
		return &hintError{err: err, hint: "fix the file and run this check again; a running server keeps its configuration until the file is valid"}
	}
	if *asJSON {
		return printJSON(r.stdout, configCheckJSON{File: path, Valid: true})
	}
	fmt.Fprintf(r.stdout, "%s: valid\n", path)
	return nil
}
