package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/certwright/certwright/internal/pki"
)

// Script commands for the revocation scripts.
var revocationCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"freeport": freePort,
	"certinfo": certInfo,
	"fetch":    fetch,
	"waitcrl":  waitCRL,
	"gt":       greater,
}

// freeport VAR: set $VAR to a loopback TCP port that is free now.
func freePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ts.Setenv(args[0], strconv.Itoa(unusedPort(ts)))
}

// unusedPort returns a loopback port free now, chosen below the kernel's
// ephemeral range where it can: a port the kernel hands out for ":0"
// (which every other test in CI binds) could be given to another test
// between this check and the script's server binding it.
func unusedPort(ts *testscript.TestScript) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low > 20000 {
		for range 50 {
			port := 10000 + mathrand.IntN(low-10000)
			if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				ln.Close()
				return port
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// certinfo FILE PREFIX: set $PREFIX_SERIAL, $PREFIX_OCSP and $PREFIX_CRL
// from the first certificate in the PEM file.
func certInfo(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: certinfo FILE PREFIX")
	}
	b, _ := pem.Decode([]byte(ts.ReadFile(args[0])))
	if b == nil {
		ts.Fatalf("%s: no PEM block", args[0])
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Setenv(args[1]+"_SERIAL", pki.SerialHex(c.SerialNumber))
	if len(c.OCSPServer) > 0 {
		ts.Setenv(args[1]+"_OCSP", c.OCSPServer[0])
	}
	if len(c.CRLDistributionPoints) > 0 {
		ts.Setenv(args[1]+"_CRL", c.CRLDistributionPoints[0])
	}
}

// fetch URL FILE [METHOD CONTENT-TYPE BODYFILE]: write the response body to
// FILE and print "status N" and the Content-Type, Cache-Control and ETag.
func fetch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 5 {
		ts.Fatalf("usage: fetch URL FILE [METHOD CONTENT-TYPE BODYFILE]")
	}
	method, ctype := "GET", ""
	var body io.Reader
	if len(args) == 5 {
		method, ctype = args[2], args[3]
		body = bytes.NewReader([]byte(ts.ReadFile(args[4])))
	}
	req, err := http.NewRequest(method, args[0], body)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), data, 0o644); err != nil {
		ts.Fatalf("%v", err)
	}
	fmt.Fprintf(ts.Stdout(), "status %d\ncontent-type: %s\ncache-control: %s\netag: %s\n",
		resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
}

// waitcrl URL SERIAL FILE VAR: poll the CRL at URL (up to 10 s) until it
// lists SERIAL, write it to FILE (DER) and set $VAR to its CRL number.
// With !, wait until the CRL does not list SERIAL.
func waitCRL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: waitcrl URL SERIAL FILE VAR")
	}
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for {
		crl, der, err := getCRL(args[0])
		if err == nil {
			listed := false
			for _, e := range crl.RevokedCertificateEntries {
				if pki.SerialHex(e.SerialNumber) == args[1] {
					listed = true
				}
			}
			if listed != neg {
				if err := os.WriteFile(ts.MkAbs(args[2]), der, 0o644); err != nil {
					ts.Fatalf("%v", err)
				}
				ts.Setenv(args[3], crl.Number.String())
				return
			}
			last = fmt.Sprintf("CRL number %s lists %d entries, listed=%v", crl.Number, len(crl.RevokedCertificateEntries), listed)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			ts.Fatalf("CRL at %s did not reach the expected state for %s within 10s: %s", args[0], args[1], last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getCRL(url string) (*x509.RevocationList, []byte, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	crl, err := x509.ParseRevocationList(der)
	return crl, der, err
}

// gt A B: succeed when the integer A is greater than B.
func greater(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: gt A B")
	}
	a, err1 := strconv.ParseInt(args[0], 10, 64)
	b, err2 := strconv.ParseInt(args[1], 10, 64)
	if err1 != nil || err2 != nil {
		ts.Fatalf("gt: %q and %q must be integers", args[0], args[1])
	}
	if (a > b) == neg {
		ts.Fatalf("gt %d %d is %v", a, b, a > b)
	}
}
