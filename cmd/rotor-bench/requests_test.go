package main

import (
	"net/http"
	"net/url"
	"testing"
)

// TestRequestKinds: the counting proxy names each of rotor's Vault
// requests by what rotor does with it, so that `scale -requests` shows a
// new kind of request as its own line rather than inside another.
func TestRequestKinds(t *testing.T) {
	c := newCounter("bench")
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{http.MethodGet, "/v1/secret/data/bench/s00001", 200, "KV data read"},
		{http.MethodPut, "/v1/secret/data/bench/s00001", 200, "KV data write"},
		{http.MethodPatch, "/v1/secret/metadata/bench/s00001", 200, "KV metadata patch"},
		{http.MethodGet, "/v1/secret/data/bench/_audit/head", 200, "audit chain head read"},
		{http.MethodPut, "/v1/secret/data/bench/_audit/records/12", 200, "audit chain batch write"},
		{http.MethodGet, "/v1/secret/data/bench/_audit/records/13", 404, "audit chain batch read (none there)"},
		{http.MethodGet, "/v1/secret/data/bench/_audit/checkpoint/head", 404, "audit saves checkpoint read (none there)"},
		{http.MethodPut, "/v1/secret/data/bench/_audit/checkpoint/0", 200, "audit saves checkpoint write"},
		{http.MethodGet, "/v1/auth/token/lookup-self", 200, "other: GET auth/token/lookup-self"},
	} {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.kind(tc.method, u, tc.status); got != tc.want {
			t.Errorf("%s %s (%d) = %q, want %q", tc.method, tc.path, tc.status, got, tc.want)
		}
	}
}
