package awssm

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/store"
)

// isolateAWS keeps the SDK's default chain away from the machine's AWS
// setup: static credentials from the environment, no files, no IMDS.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test-secret-access-key",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
	} {
		t.Setenv(k, v)
	}
}

// TestNew builds a store from its config block with the SDK's default
// credential chain, against the emulator as a custom endpoint.
func TestNew(t *testing.T) {
	isolateAWS(t)
	srv := awsfake.Start(t, awsfake.Options{})
	ctx := t.Context()

	st, err := New(ctx, &config.AWSSMStore{Region: "us-east-1", Endpoint: srv.URL(), Prefix: "svc/"})
	if err != nil {
		t.Fatal(err)
	}
	v := mustSave(t, st, &store.Secret{Name: "k", Current: key("c0")}, store.NoVersion)
	if _, lv := mustLoad(t, st, "k"); lv != v {
		t.Fatalf("Load version %s, want %s", lv, v)
	}
	if n := srv.Count("DescribeSecret", "svc/k"); n == 0 {
		t.Fatal("the store did not use the configured endpoint and prefix")
	}

	t.Run("region from the environment", func(t *testing.T) {
		t.Setenv("AWS_REGION", "us-east-1")
		st, err := New(ctx, &config.AWSSMStore{Endpoint: srv.URL(), Prefix: "svc/"})
		if err != nil {
			t.Fatal(err)
		}
		mustLoad(t, st, "k")
	})
	t.Run("no region", func(t *testing.T) {
		_, err := New(ctx, &config.AWSSMStore{Endpoint: srv.URL()})
		if err == nil || !strings.Contains(err.Error(), "region") {
			t.Fatalf("New without a region = %v, want an error naming the region", err)
		}
	})
}

func parseStore(t *testing.T, block string) (*config.Config, error) {
	t.Helper()
	doc := "store:\n  type: awssm\n  awssm:\n" + block + "secrets:\n  - name: app\n    provider: random\n"
	return config.Parse([]byte(doc), t.TempDir())
}

// TestConfigBlock checks the defaults and validation of store.awssm.
func TestConfigBlock(t *testing.T) {
	c, err := parseStore(t, "    region: eu-west-1\n    endpoint: http://localhost:4566/\n")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Store.AWSSM
	if got.Prefix != DefaultPrefix || got.Endpoint != "http://localhost:4566" || got.Region != "eu-west-1" {
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
			_, err := parseStore(t, tc.block)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
