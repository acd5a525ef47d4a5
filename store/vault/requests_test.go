package vault

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
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
// minted key, no hooks): each save is one KV write (a new version) and one
// metadata patch (see metadata.go), plus the one load. A change that adds
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
	const saves = 5
	want := map[string]int{"GET data": 1, "PUT data": saves, "PATCH metadata": saves}
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
