package config

import (
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/store/awssm"
)

func parseAWSSMBlock(t *testing.T, block string) (*Config, error) {
	t.Helper()
	doc := "store:\n  type: awssm\n  awssm:\n" + block + "secrets:\n  - name: app\n    provider: random\n"
	return Parse([]byte(doc), t.TempDir())
}

// TestAWSSMStoreBlock checks the defaults and validation of store.awssm.
func TestAWSSMStoreBlock(t *testing.T) {
	c, err := parseAWSSMBlock(t, "    region: eu-west-1\n    endpoint: http://localhost:4566/\n")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Store.AWSSM
	if got.Prefix != awssm.DefaultPrefix || got.Endpoint != "http://localhost:4566" || got.Region != "eu-west-1" {
		t.Fatalf("parsed %+v, want the default prefix and the endpoint without a trailing /", got)
	}

	tests := []struct {
		name, block, want string
	}{
		{"bad region", "    region: Europe\n", "line 4: store.awssm.region: invalid region"},
		{"http to a remote endpoint", "    endpoint: http://sm.example.com\n", "store.awssm.endpoint: plain http is only allowed to a loopback address"},
		{"not a URL", "    endpoint: localhost:4566\n", "store.awssm.endpoint: invalid URL"},
		{"wildcard in prefix", "    prefix: rotor/*\n", "store.awssm.prefix: invalid prefix"},
		{"long prefix", "    prefix: " + strings.Repeat("p", 400) + "\n", "store.awssm.prefix: prefix is 400 characters long"},
		{"space in KMS key", "    kms_key_id: alias/my key\n", "store.awssm.kms_key_id: invalid KMS key"},
		{"unknown field", "    profile: prod\n", "field profile not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAWSSMBlock(t, tc.block)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
