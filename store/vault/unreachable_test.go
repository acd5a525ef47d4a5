package vault

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/store"
)

// TestVaultUnreachable puts a TCP proxy between the store and Vault, cuts
// it while the store is in use, and checks that Save and Load fail with an
// error naming the Vault address (and no value), that nothing was written,
// and that the store works again once the proxy is restored.
func TestVaultUnreachable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p := startProxy(t, strings.TrimPrefix(srv.Addr, "http://"))
	cfg := tokenConfig(t, srv.Token)
	cfg.Address = "http://" + p.addr()
	// No client retries: they would only make the test slower, and the
	// outcome (an error, nothing written) is the same.
	st := newStore(t, cfg, WithAPIConfig(func(c *api.Config) { c.MaxRetries = 0 }))

	sec := sampleSecret("cut")
	v1, err := st.Save(ctx, sec, store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}

	p.cut()
	next := sec.Clone()
	next.Previous, next.Current = next.Current, next.Pending
	next.Pending = nil
	_, err = st.Save(ctx, next, v1)
	checkUnreachable(t, "Save", err, cfg.Address, sec)
	_, _, err = st.Load(ctx, "cut")
	checkUnreachable(t, "Load", err, cfg.Address, sec)

	// Nothing was written: Vault (asked directly) still has version 1.
	md, err := srv.Client.KVv2("secret").GetMetadata(ctx, st.prefix+"/cut")
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != 1 {
		t.Fatalf("current version = %d after the failed save, want 1", md.CurrentVersion)
	}

	p.restore()
	v2, err := st.Save(ctx, next, v1)
	if err != nil {
		t.Fatalf("Save after restore: %v", err)
	}
	got, gotV, err := st.Load(ctx, "cut")
	if err != nil {
		t.Fatalf("Load after restore: %v", err)
	}
	if gotV != v2 || got.Current.ID != next.Current.ID {
		t.Errorf("after restore: current %s at %q, want %s at %q", got.Current.ID, gotV, next.Current.ID, v2)
	}
}

func checkUnreachable(t *testing.T, op string, err error, addr string, sec *store.Secret) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s through a cut connection succeeded", op)
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want a connection error, not a store condition", op, err)
	}
	if !strings.Contains(err.Error(), "vault "+addr) {
		t.Errorf("%s: error %q does not name the Vault address %s", op, err, addr)
	}
	assertNoValue(t, op+" error", err.Error(), sec)
}

// proxy forwards TCP connections to a target until cut; while cut it
// drops every connection, open or new.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// track registers c unless the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every open connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
