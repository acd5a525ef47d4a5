package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// ListenConfig says where and how the API listens.
type ListenConfig struct {
	// Addr is the host:port to listen on, e.g. "127.0.0.1:8700" or
	// ":8443".
	Addr string
	// CertFile and KeyFile, both or neither, are the PEM certificate
	// (chain) and key to serve TLS with. They are read again when they
	// change on disk, so certificates can be renewed without a restart.
	CertFile string
	KeyFile  string
	// AllowPlaintext permits plain HTTP on an address that is not
	// loopback, for a deployment behind a proxy that terminates TLS.
	// Without it, plain HTTP is only served on loopback addresses.
	AllowPlaintext bool
}

// Listen checks c and opens its listener: TLS (1.2 or later) when a
// certificate is configured, plain TCP otherwise.
func (c ListenConfig) Listen() (net.Listener, error) {
	if c.Addr == "" {
		return nil, errors.New("listen: no address")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("listen: tls needs both cert_file and key_file")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	tlsOn := c.CertFile != ""
	if !tlsOn && !c.AllowPlaintext && !loopbackHost(host) {
		return nil, fmt.Errorf("listen on %s: plain HTTP would send tokens and secret values in the clear; configure tls (cert_file, key_file), listen on loopback, or set allow_plaintext behind a TLS-terminating proxy", c.Addr)
	}
	var cfg *tls.Config
	if tlsOn {
		cr := &certReloader{certFile: c.CertFile, keyFile: c.KeyFile}
		if _, err := cr.load(); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cr.get}
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// certReloader serves a certificate from files, loading them again when
// either changes.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime [2]time.Time
}

func (c *certReloader) load() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mt [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			if c.cert != nil {
				return c.cert, nil // keep serving the last good one
			}
			return nil, fmt.Errorf("tls: %w", err)
		}
		mt[i] = fi.ModTime()
	}
	if c.cert != nil && mt == c.modTime {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // a half-written renewal: retry next time
		}
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.cert, c.modTime = &cert, mt
	return c.cert, nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.load() }

// shutdownTimeout bounds the graceful shutdown of [Serve].
const shutdownTimeout = 30 * time.Second

// Serve serves h on ln until ctx is done, then shuts down gracefully:
// it stops accepting, ends watch streams (when h is a *[Server]) and waits
// up to 30 seconds for requests in flight, such as a rotation, to finish.
// log receives the server's own errors (nil: discard).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		// No WriteTimeout: watch streams and rotations are long; the
		// watch handler sets a deadline per write instead.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s, ok := h.(*Server); ok {
		srv.RegisterOnShutdown(s.Close)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
