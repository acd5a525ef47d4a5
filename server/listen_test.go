package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/server"
)

func TestListenConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "one")
	tests := []struct {
		name string
		cfg  server.ListenConfig
		want string // substring of the error; empty = listens
	}{
		{"loopback plain", server.ListenConfig{Addr: "127.0.0.1:0"}, ""},
		{"public plain", server.ListenConfig{Addr: "0.0.0.0:0"}, "plain HTTP"},
		{"public plain behind a proxy", server.ListenConfig{Addr: "0.0.0.0:0", AllowPlaintext: true}, ""},
		{"cert without key", server.ListenConfig{Addr: "127.0.0.1:0", CertFile: cert}, "both"},
		{"missing cert", server.ListenConfig{Addr: "0.0.0.0:0", CertFile: filepath.Join(dir, "nope"), KeyFile: key}, "tls"},
		{"tls", server.ListenConfig{Addr: "0.0.0.0:0", CertFile: cert, KeyFile: key}, ""},
		{"no address", server.ListenConfig{}, "no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tt.cfg.Listen()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				ln.Close()
				return
			}
			if err == nil {
				ln.Close()
				t.Fatal("listened")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestServeTLS serves the API over TLS, renews the certificate on disk,
// and shuts down with a watch stream open.
func TestServeTLS(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "one")
	ln, err := server.ListenConfig{Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, ln, e.api, nil) }()

	url := "https://" + ln.Addr().String()
	serverCN := func() string {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := serverCN(); cn != "one" {
		t.Fatalf("serving %q", cn)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %v %v", resp, err)
	}
	resp.Body.Close()

	// Renew: new files, newer modification time.
	writeCert(t, dir, "two")
	later := time.Now().Add(time.Minute)
	os.Chtimes(cert, later, later)
	os.Chtimes(key, later, later)
	if cn := serverCN(); cn != "two" {
		t.Fatalf("after renewal serving %q", cn)
	}

	// A watch stream must not hold up shutdown.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/watch/clerk", nil)
	req.Header.Set("Authorization", "Bearer "+tokApp)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch over TLS: %v %v", resp, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return with a watch stream open")
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with common
// name cn to dir/cert.pem and dir/key.pem.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
