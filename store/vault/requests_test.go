package vault

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// countingTransport counts the requests the Vault client sends, by method
// and by the kind of KV path (data or metadata).
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "other"
	switch {
	case strings.Contains(req.URL.Path, "/data/"):
		kind = "data"
	case strings.Contains(req.URL.Path, "/metadata/"):
		kind = "metadata"
	}
	c.mu.Lock()
	c.n[req.Method+" "+kind]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestRequestsPerRotation pins the Vault requests of one rotation (a
// minted key, no hooks): each save is one KV write (a new version), plus
// the one load, and the rotation's versions are described in one metadata
// patch (see metadata.go). Without hooks a rotation saves three times:
// start, create, finish (see the rotation package doc). A change that adds
// a save shows here; BENCHMARKS.md has what a request costs.
func TestRequestsPerRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ct := &countingTransport{n: map[string]int{}}
	st := rootStore(t, WithAPIConfig(func(c *api.Config) {
		ct.next = c.HttpClient.Transport
		c.HttpClient.Transport = ct
	}))
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "counted", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	_, before, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	ct.take()
	if _, err := eng.Rotate(context.WithoutCancel(ctx), sec); err != nil {
		t.Fatal(err)
	}
	got := ct.take()
	const saves = 3
	want := map[string]int{"GET data": 1, "PUT data": saves, "PATCH metadata": 1}
	if len(got) != len(want) {
		t.Errorf("requests of one rotation = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d requests in one rotation, want %d (all: %v)", k, got[k], n, got)
		}
	}
	_, after, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parseVersion(before)
	a, _ := parseVersion(after)
	if a-b != saves {
		t.Errorf("one rotation made %d KV versions (%s → %s), want %d", a-b, before, after, saves)
	}
}

// barrier holds each response until n requests are in flight, so that n
// connections are busy at once, however the machine schedules them.
type barrier struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    int
	open chan struct{} // closed when the round's n requests are in flight
}

func (b *barrier) round(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n, b.open = n, make(chan struct{})
}

func (b *barrier) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := b.next.RoundTrip(req) // the connection stays busy until the body is read
	b.mu.Lock()
	open := b.open
	if b.n--; b.n == 0 {
		close(open)
	}
	b.mu.Unlock()
	<-open
	return res, err
}

// TestParallelLoadsReuseConnections runs rounds of parallel loads, as
// `rotor rotate --due --parallel 16` does, each with 16 requests in flight
// at once: the client keeps the connections for the next round instead of
// opening new ones (the Vault client's default kept GOMAXPROCS+1 idle and
// opened the rest anew every round).
func TestParallelLoadsReuseConnections(t *testing.T) {
	t.Parallel()
	const parallel, rounds = 16, 8
	var dials atomic.Int32
	b := &barrier{open: make(chan struct{})}
	close(b.open) // requests pass until the first round
	st := rootStore(t, WithAPIConfig(func(c *api.Config) {
		tr := c.HttpClient.Transport.(*http.Transport)
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dial(ctx, network, addr)
		}
		b.next = tr
		c.HttpClient.Transport = b
	}))
	ctx := t.Context()
	if _, err := st.Save(ctx, sampleSecret("pooled"), store.NoVersion); err != nil {
		t.Fatal(err)
	}
	for range rounds {
		b.round(parallel)
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for range parallel {
			wg.Go(func() {
				if _, _, err := st.Load(ctx, "pooled"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Every connection opened is kept: at most one per request in flight,
	// and one more per request whose dial lost to a connection freed
	// meanwhile.
	if n := dials.Load(); n > 2*parallel {
		t.Errorf("%d rounds of %d parallel loads opened %d connections, want at most %d", rounds, parallel, n, 2*parallel)
	}
}
