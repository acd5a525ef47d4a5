package childenv

import (
	"slices"
	"testing"
)

func TestFilter(t *testing.T) {
	environ := []string{"PATH=/bin", "VAULT_TOKEN=s.x", "VAULT_ADDR=https://v", "PORT=3000", "ROTOR_CONFIG=r.yaml",
		"CLERK_SECRET_KEY=sk_live_x", "AWS_SECRET_ACCESS_KEY=y", "AWS_REGION=eu-west-1", "KUBECONFIG=/k", "ODD"}
	got := Filter(environ, []string{"VAULT_*", "ROTOR_*", "CLERK_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"}, []string{"VAULT_ADDR"})
	want := []string{"PATH=/bin", "VAULT_ADDR=https://v", "PORT=3000", "AWS_REGION=eu-west-1", "KUBECONFIG=/k", "ODD"}
	if !slices.Equal(got, want) {
		t.Fatalf("Filter = %q, want %q", got, want)
	}
	// A name that merely starts like an exact entry is not dropped.
	if got := Filter([]string{"CLERK_SECRET_KEY_PRIMARY=x"}, []string{"CLERK_SECRET_KEY"}, nil); len(got) != 1 {
		t.Fatalf("exact entry dropped a longer name: %q", got)
	}
}
