package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestServeStatusPage: rotor serve serves the status page with the
// config's tokens, and the page shows the result of serve's own check of
// the audit chain (the wiring of Server.AuditVerified).
func TestServeStatusPage(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	ci, viewer, app := apiConfig(t, dir)
	base, _, logs := startDaemon(t, dir, "serve")

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) string {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	form := get("/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("GET /login is not the login form:\n%s", form)
	}
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "token": {viewer}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var page string
	waitFor(t, "the page to show serve's check of the audit chain", func() bool {
		page = get("/")
		return strings.Contains(page, "Audit chain: <strong>verified</strong>")
	})
	for _, want := range []string{`id="secret-demo"`, "token:dashboard", "viewer", "rotate.finish"} {
		if !strings.Contains(page, want) {
			t.Errorf("the viewer's page lacks %q", want)
		}
	}
	if strings.Contains(page, `action="/secrets/demo/rotate"`) {
		t.Error("the viewer's page has a rotate button")
	}
	leakCheck(t, dir, []procResult{{stdout: logs.String()}, {stdout: page}}, ci, viewer, app)
}
