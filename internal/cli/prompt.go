package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/certwright/certwright/internal/config"
)

// isTerminal reports whether r is an interactive terminal. Pipes, files and
// /dev/null are not: init never prompts when a script or service runs it.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// maxAnswer bounds one typed answer, in bytes.
const maxAnswer = 1024

// maxAttempts bounds how often one question is asked again after a bad answer.
const maxAttempts = 3

// errNoAnswer: the input ended (Ctrl-D) before a question was answered.
const errNoAnswer = constError("init: input ended before every question was answered; nothing was created")

// asker asks questions on a terminal, one line per answer.
type asker struct {
	// ctx ends on Ctrl-C (serve and init catch SIGINT): a question waiting
	// for an answer gives up then.
	ctx context.Context
	in  *bufio.Reader
	out io.Writer
}

// ask shows question with its default, reads one line and returns the
// default for an empty answer. check refuses an answer with a reason, and
// the question is asked again, at most maxAttempts times.
func (a *asker) ask(question, def string, check func(string) error) (string, error) {
	var last error
	for range maxAttempts {
		fmt.Fprintf(a.out, "%s [%s]: ", question, def)
		line, err := a.readLine()
		if err != nil {
			fmt.Fprintln(a.out)
			return "", err
		}
		if line == "" {
			line = def
		}
		if last = check(line); last == nil {
			return line, nil
		}
		fmt.Fprintf(a.out, "  %s\n", strings.TrimPrefix(last.Error(), config.ErrInvalid.Error()+": "))
	}
	return "", fmt.Errorf("init: no valid answer after %d attempts: %w", maxAttempts, last)
}

// readLine reads one line of at most maxAnswer bytes, trimmed, or gives
// up when ctx ends (the read itself cannot be interrupted; the process
// ends right after).
func (a *asker) readLine() (string, error) {
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := a.read()
		ch <- answer{line, err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-a.ctx.Done():
		return "", fmt.Errorf("init: interrupted; nothing was created: %w", a.ctx.Err())
	}
}

func (a *asker) read() (string, error) {
	var b strings.Builder
	for {
		chunk, isPrefix, err := a.in.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", errNoAnswer
			}
			return "", fmt.Errorf("init: read answer: %w", err)
		}
		if b.Len()+len(chunk) > maxAnswer {
			return "", fmt.Errorf("init: answer longer than %d bytes", maxAnswer)
		}
		b.Write(chunk)
		if !isPrefix {
			return strings.TrimSpace(b.String()), nil
		}
	}
}

// askIdentity asks for the settings that name the CA for good and that
// neither the flags nor the configuration file gave: the organisation in
// the CA subjects and the public URL embedded in every certificate.
func askIdentity(ctx context.Context, in io.Reader, out io.Writer, cfg *config.Config) error {
	if cfg.Init.Organization != "" && cfg.PublicHTTPURL != "" {
		return nil
	}
	// The defaults the answers replace, as Defaults would set them.
	def := config.Config{HTTPListen: cfg.HTTPListen}
	def.Defaults()
	a := &asker{ctx: ctx, in: bufio.NewReader(in), out: out}
	fmt.Fprintf(out, "Setting up a new CA in %s. The organisation goes into the CA certificates for\ngood, the public URL into every certificate issued. Press Enter to keep the default shown.\n", cfg.DataDir)
	if cfg.Init.Organization == "" {
		org, err := a.ask("Organisation name (in the CA certificates' subjects)", def.Init.Organization, config.ValidateOrganization)
		if err != nil {
			return err
		}
		cfg.Init.Organization = org
	}
	if cfg.PublicHTTPURL == "" {
		u, err := a.ask("Public URL relying parties fetch CRLs and OCSP from, http://HOST[:PORT]", def.PublicHTTPURL, config.ValidatePublicHTTPURL)
		if err != nil {
			return err
		}
		cfg.PublicHTTPURL = strings.TrimSuffix(u, "/")
	}
	return nil
}
