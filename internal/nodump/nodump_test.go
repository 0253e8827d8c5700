package nodump_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/nodump"
)

// childEnv makes the test binary act as the child below.
const childEnv = "NODUMP_TEST_CHILD"

// TestMain runs the child: Dumpable, Protect, Dumpable again, printed.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		before, _ := nodump.Dumpable()
		protected, err := nodump.Protect(os.Getenv)
		after, derr := nodump.Dumpable()
		fmt.Printf("before=%v protected=%v err=%v after=%v derr=%v\n", before, protected, err, after, derr)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(t *testing.T, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestProtect: in a child process (the setting is the process's own and
// lasts), Protect makes a dumpable process undumpable on Linux, as
// prctl(PR_GET_DUMPABLE) reports; CERTWRIGHT_ALLOW_CORE_DUMPS=1 leaves it
// dumpable.
func TestProtect(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("core dump protection is Linux-only")
	}
	got := runChild(t, nodump.EnvAllow+"=")
	if want := "before=true protected=true err=<nil> after=false derr=<nil>"; got != want {
		t.Errorf("child reports %q, want %q", got, want)
	}
	got = runChild(t, nodump.EnvAllow+"=1")
	if want := "before=true protected=false err=<nil> after=true derr=<nil>"; got != want {
		t.Errorf("with %s=1 the child reports %q, want %q", nodump.EnvAllow, got, want)
	}
}
