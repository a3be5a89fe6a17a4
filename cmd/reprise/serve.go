package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/internal/web"
)

func newServeCmd() *cobra.Command {
	var listen, certFile, keyFile string
	var selfSigned bool
	var statePath, anchorDest *string
	c := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080] [--tls-cert FILE --tls-key FILE | --tls-self-signed]",
		Short: "Serve the crisis room: a live web dashboard of the state file's runs and its JSON API",
		Long: `Serve the crisis room: the runs of the state file, live while a run goes on
(through its control socket) and after it ended — % of vital services back,
gates, failures, deadlines, the graph, each node, the journal and its check,
the report — and the JSON API under /api/v1/ (docs/API.md).

Operators log in with the token of ` + "`reprise operators add`" + `; every action
taken here is journaled with their name, and reaches a run going on through
its control socket. A resume started here (role operator or above) runs as a
process of its own, ` + "`reprise resume RUN --by OPERATOR --wait`" + `, in its own
process group with its output in STATE.resume.log: stopping serve does not
stop it (send it SIGINT to drain it). Listen on 127.0.0.1 (the default) or
serve TLS: --tls-cert/--tls-key, or --tls-self-signed, which makes a
certificate and prints its SHA-256 fingerprint to check in the browser.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if (certFile == "") != (keyFile == "") {
				return usageError("serve: --tls-cert and --tls-key go together")
			}
			if selfSigned && certFile != "" {
				return usageError("serve: --tls-self-signed or --tls-cert/--tls-key, not both")
			}
			useTLS := selfSigned || certFile != ""
			wo, closeState, err := serveState(*statePath)
			if err != nil {
				return err
			}
			defer closeState()
			wo.TLS, wo.Warm = useTLS, true
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("serve: find the reprise binary, which runs the resumes started from the dashboard: %w", err)
			}
			errw := c.ErrOrStderr()
			wo.Anchor, wo.Reprise = *anchorDest, self
			wo.Logf = func(format string, args ...any) { fmt.Fprintf(errw, "reprise serve: "+format+"\n", args...) }
			srv, err := web.New(wo)
			if err != nil {
				return err
			}
			defer srv.Close()
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("serve: listen on %s: %w", listen, err)
			}
			scheme := "http"
			if useTLS {
				scheme = "https"
				var cert tls.Certificate
				if selfSigned {
					host, _, _ := net.SplitHostPort(listen)
					var fp string
					cert, fp, err = web.SelfSigned(host, time.Now())
					if err != nil {
						ln.Close()
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "self-signed certificate, SHA-256 fingerprint:\n  %s\n", fp)
				} else if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
					ln.Close()
					return fmt.Errorf("serve: --tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
				}
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			}
			fmt.Fprintf(c.OutOrStdout(), "reprise serve: %s://%s/ (state file %s); Ctrl-C to stop\n", scheme, ln.Addr(), *statePath)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			case <-ctx.Done():
			}
			srv.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(sctx)
		},
	}
	statePath = addStateFlag(c)
	anchorDest = addAnchorFlag(c, "also record the journal head after each action taken on the dashboard here (a file, appended to, or an http(s) webhook), and check the journal against it first; resumes started here get it too (env REPRISE_ANCHOR)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	c.Flags().StringVar(&certFile, "tls-cert", "", "TLS certificate (PEM)")
	c.Flags().StringVar(&keyFile, "tls-key", "", "TLS private key (PEM)")
	c.Flags().BoolVar(&selfSigned, "tls-self-signed", false, "serve TLS with a certificate made now; prints its SHA-256 fingerprint")
	return c
}
