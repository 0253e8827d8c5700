package replicatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHAProxyConfig checks that deploy/haproxy/certwright.cfg takes the
// harness's ports for one to three replicas (no example port left, no
// server line of a replica not running) and that HAProxy accepts the
// result.
func TestHAProxyConfig(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not found: install it (apt-get install haproxy) to check deploy/haproxy/certwright.cfg")
	}
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			c := &Cluster{t: t}
			for i := range n {
				c.Replicas = append(c.Replicas, &Replica{Name: fmt.Sprintf("r%d", i+1),
					HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", 20441+i), HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 20081+i)})
			}
			cfg := c.haproxyConfig(20443, 20080)
			if got := strings.Count(cfg, "\n    server r"); got != 2*n {
				t.Errorf("%d server lines, want %d (two backends)\n%s", got, 2*n, cfg)
			}
			for _, want := range []string{"bind 127.0.0.1:20443", "bind 127.0.0.1:20080", "127.0.0.1:20441 check port 20081"} {
				if !strings.Contains(cfg, want) {
					t.Errorf("the configuration lacks %q\n%s", want, cfg)
				}
			}
			path := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tool, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
				t.Errorf("haproxy -c: %v\n%s", err, out)
			}
		})
	}
}
