package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
)

// manySecrets is a backend that reports n secrets, each an overview of
// the one stored secret "clerk": the page's own cost (one Overview call
// per secret, the template, the HTML) without the store's.
type manySecrets struct {
	*servertest.Backend
	names []string
}

func (m *manySecrets) Names(context.Context) ([]string, error) { return m.names, nil }

func (m *manySecrets) Overview(ctx context.Context, _ string) (server.Overview, error) {
	return m.Backend.Overview(ctx, "clerk")
}

// BenchmarkStatusPage renders GET / for an admin over HTTP on loopback
// with 100, 1,000 and 10,000 secrets (and the last 50 audit records), and
// reports the page's size. See BENCHMARKS.md.
func BenchmarkStatusPage(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			sb := servertest.NewBackend(b, "clerk")
			if _, err := sb.Rotate(b.Context(), "clerk", "user:setup"); err != nil {
				b.Fatal(err)
			}
			m := &manySecrets{Backend: sb}
			for i := range n {
				m.names = append(m.names, fmt.Sprintf("secret-%05d", i))
			}
			tokens, err := authz.NewTokenAuthenticator([]authz.Token{{Name: "admin", Hash: authz.HashToken(tokAdmin), Role: authz.RoleAdmin}})
			if err != nil {
				b.Fatal(err)
			}
			api, err := server.New(m, tokens, sb.Log)
			if err != nil {
				b.Fatal(err)
			}
			defer api.Close()
			srv := httptest.NewServer(api)
			defer srv.Close()
			jar, _ := cookiejar.New(nil)
			c := srv.Client()
			c.Jar = jar
			form := readBody(b, c, "GET", srv.URL+"/login", nil)
			m1 := csrfField.FindStringSubmatch(form)
			if m1 == nil {
				b.Fatal("no login form")
			}
			readBody(b, c, "POST", srv.URL+"/login", url.Values{"csrf": {m1[1]}, "token": {tokAdmin}})
			var size int
			for b.Loop() {
				size = len(readBody(b, c, "GET", srv.URL+"/", nil))
			}
			b.ReportMetric(float64(size)/1024, "KiB/page")
		})
	}
}

func readBody(b *testing.B, c *http.Client, method, u string, form url.Values) string {
	b.Helper()
	var resp *http.Response
	var err error
	if form != nil {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s %s: %d", method, u, resp.StatusCode)
	}
	return string(body)
}
