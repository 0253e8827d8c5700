package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// isVersionArg reports whether a is the top-level --version flag.
func isVersionArg(a string) bool { return a == "--version" || a == "-version" }

// buildVersion is what the binary knows about its own build.
type buildVersion struct {
	Version   string
	Commit    string
	Time      string
	Modified  bool
	GoVersion string
}

// readBuildVersion reads the build information the Go toolchain embeds:
// the module version (set by go install MODULE@VERSION), the VCS commit
// and whether the tree had local changes (set by go build in a checkout).
// Without a module version (go run, tests, go build outside version
// control) the version is the source's own.
func readBuildVersion(bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: version, Commit: "unknown", GoVersion: "unknown"}
	if !ok || bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		v.Version = mv
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// currentVersion is this binary's build version.
func currentVersion() buildVersion { return readBuildVersion(debug.ReadBuildInfo()) }

func (v buildVersion) print(w io.Writer) {
	fmt.Fprintf(w, "certwright %s\n", v.Version)
	commit := v.Commit
	if v.Modified {
		commit += " (with uncommitted changes)"
	}
	if v.Time != "" {
		commit += " " + v.Time
	}
	fmt.Fprintf(w, "  commit: %s\n", commit)
	fmt.Fprintf(w, "  go:     %s\n", v.GoVersion)
}

func runVersion(_ context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	currentVersion().print(r.stdout)
	return nil
}
