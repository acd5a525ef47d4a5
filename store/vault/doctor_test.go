package vault

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestLoginUnreachableVsRejected checks that New tells a Vault that cannot
// be reached (a refused connection) from a Vault that refuses the token:
// the first is an *UnreachableError and not ErrAuthRejected, the second
// the other way round. Neither error carries the token.
func TestLoginUnreachableVsRejected(t *testing.T) {
	t.Parallel()
	// A loopback port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	noRetry := WithAPIConfig(func(c *api.Config) { c.MaxRetries = 0 })

	cfg := tokenConfig(t, srv.Token)
	cfg.Address = closed
	_, err = New(t.Context(), cfg, noRetry)
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("refused connection: err = %v, want an *UnreachableError", err)
	}
	if errors.Is(err, ErrAuthRejected) {
		t.Errorf("refused connection reported as a rejected token: %v", err)
	}
	if strings.Contains(err.Error(), srv.Token) {
		t.Errorf("error carries the token: %v", err)
	}

	const bogus = "hvs.not-a-token-rotor-doctor"
	cfg = tokenConfig(t, bogus)
	_, err = New(t.Context(), cfg, noRetry)
	if !errors.Is(err, ErrAuthRejected) {
		t.Fatalf("bogus token: err = %v, want ErrAuthRejected", err)
	}
	if errors.As(err, &ue) {
		t.Errorf("bogus token reported as unreachable: %v", err)
	}
	if strings.Contains(err.Error(), bogus) {
		t.Errorf("error carries the token: %v", err)
	}
}

// TestServerTime checks that the store reads Vault's clock from the Date
// header: the dev server runs on this machine, so the two clocks agree to
// the header's one-second resolution.
func TestServerTime(t *testing.T) {
	t.Parallel()
	st := newStore(t, tokenConfig(t, srv.Token))
	before := time.Now().Truncate(time.Second)
	got, err := st.ServerTime(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Errorf("ServerTime = %v, want within [%v, %v]", got, before, after)
	}
}
