package awssm

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/field"
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

// TestNew builds a store from its Options with the SDK's default
// credential chain, against the emulator as a custom endpoint.
func TestNew(t *testing.T) {
	isolateAWS(t)
	srv := awsfake.Start(t, awsfake.Options{})
	ctx := t.Context()

	st, err := New(ctx, Options{Region: "us-east-1", Endpoint: srv.URL(), Prefix: "svc/"})
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
		st, err := New(ctx, Options{Endpoint: srv.URL(), Prefix: "svc/"})
		if err != nil {
			t.Fatal(err)
		}
		mustLoad(t, st, "k")
	})
	t.Run("no region", func(t *testing.T) {
		_, err := New(ctx, Options{Endpoint: srv.URL()})
		if err == nil || !strings.Contains(err.Error(), "region") {
			t.Fatalf("New without a region = %v, want an error naming the region", err)
		}
	})
}

// TestOptions checks the defaults and validation of Options; config's
// tests check the same through rotor.yaml, with paths and lines.
func TestOptions(t *testing.T) {
	got := Options{Region: "eu-west-1", Endpoint: "http://localhost:4566/"}.WithDefaults()
	if got.Prefix != DefaultPrefix || got.Endpoint != "http://localhost:4566" || got.Region != "eu-west-1" {
		t.Fatalf("WithDefaults = %+v, want the default prefix and the endpoint without a trailing /", got)
	}
	tests := []struct {
		name       string
		o          Options
		path, want string
	}{
		{"bad region", Options{Region: "Europe"}, "region", "invalid region"},
		{"http to a remote endpoint", Options{Endpoint: "http://sm.example.com"}, "endpoint", "plain http is only allowed to a loopback address"},
		{"not a URL", Options{Endpoint: "localhost:4566"}, "endpoint", "invalid URL"},
		{"wildcard in prefix", Options{Prefix: "rotor/*"}, "prefix", "invalid prefix"},
		{"long prefix", Options{Prefix: strings.Repeat("p", 400)}, "prefix", "prefix is 400 characters long"},
		{"space in KMS key", Options{KMSKeyID: "alias/my key"}, "kms_key_id", "invalid KMS key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var list field.List
			if err := tc.o.Validate(); !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("Validate = %v, want one problem", err)
			}
			if list[0].Path.String() != tc.path || !strings.Contains(list[0].Detail, tc.want) {
				t.Fatalf("problem %q at %q, want %q at %q", list[0].Detail, list[0].Path, tc.want, tc.path)
			}
			if _, err := New(t.Context(), tc.o); err == nil {
				t.Fatal("New accepted options Validate rejects")
			}
		})
	}
}
