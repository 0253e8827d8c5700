package notifytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ServeSMTPUntil runs an SMTP server until ctx ends, for a testscript
// command in the background. It writes the server's host:port to addrFile
// (and, for TLS modes, the certificate PEM to addrFile+".crt" first), then
// each accepted message to outDir/001.eml, 002.eml, ... (0600) before
// acknowledging it. Files appear whole: they are written aside and renamed.
func ServeSMTPUntil(ctx context.Context, opts SMTPOptions, addrFile, outDir string) error {
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return fmt.Errorf("notifytest: %w", err)
	}
	s, err := startSMTP(opts, func(n int, m Mail) error {
		return writeFileAtomic(filepath.Join(outDir, fmt.Sprintf("%03d.eml", n)), m.Data)
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if s.opts.TLS != TLSNone {
		if err := writeFileAtomic(addrFile+".crt", s.CertPEM()); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(addrFile, []byte(s.Addr+"\n")); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// ServeWebhookUntil runs a webhook receiver until ctx ends, for a
// testscript command in the background. It writes the receiver's URL to
// urlFile (and, with opts.TLS, the certificate PEM to urlFile+".crt"
// first), then the body of each request, whatever it was answered, to
// outDir/001.json, 002.json, ... (0600) before answering it.
func ServeWebhookUntil(ctx context.Context, opts WebhookOptions, urlFile, outDir string) error {
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return fmt.Errorf("notifytest: %w", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	w, err := startWebhook(opts, func(n int, r WebhookRequest) error {
		err := writeFileAtomic(filepath.Join(outDir, fmt.Sprintf("%03d.json", n)), r.Body)
		if err != nil {
			mu.Lock()
			firstErr = errors.Join(firstErr, err)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return err
	}
	defer w.Close()
	if opts.TLS {
		if err := writeFileAtomic(urlFile+".crt", w.CertPEM()); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(urlFile, []byte(w.URL+"\n")); err != nil {
		return err
	}
	<-ctx.Done()
	cerr := w.Close()
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(firstErr, cerr)
}

// writeFileAtomic writes data to name with mode 0600 so that a reader
// sees either nothing or the whole file.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("notifytest: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("notifytest: write %s: %w", name, err)
	}
	// CreateTemp makes the file 0600 already; keep it explicit.
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("notifytest: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("notifytest: %w", err)
	}
	return nil
}
