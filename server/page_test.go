package server_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
)

// browser is a client of the status page: its own cookie jar, redirects
// not followed (the tests check them).
type browser struct {
	e    *env
	base string
	c    *http.Client
}

func (e *env) browser() *browser {
	e.t.Helper()
	return e.browserAt(e.srv)
}

func (e *env) browserAt(srv *httptest.Server) *browser {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, base: srv.URL, c: &c}
}

// send sends a request; form, when not nil, is posted urlencoded.
func (b *browser) send(method, path string, form url.Values, header http.Header) response {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.e.t.Context(), method, b.base+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	b.e.mu.Lock()
	b.e.outputs = append(b.e.outputs, string(raw))
	b.e.mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) response {
	b.e.t.Helper()
	return b.send(http.MethodGet, path, nil, nil)
}

func (b *browser) post(path string, form url.Values) response {
	b.e.t.Helper()
	return b.send(http.MethodPost, path, form, nil)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the first form of an HTML page.
func csrf(t *testing.T, r response) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page (status %d):\n%s", r.status, r.body)
	}
	return m[1]
}

// login logs b in with token and returns the session's CSRF token.
func (b *browser) login(token string) string {
	b.e.t.Helper()
	form := b.get("/login")
	r := b.post("/login", url.Values{"csrf": {csrf(b.e.t, form)}, "token": {token}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		b.e.t.Fatalf("login: %d %s, want 303 to /:\n%s", r.status, r.header.Get("Location"), r.body)
	}
	home := b.get("/")
	if home.status != http.StatusOK {
		b.e.t.Fatalf("GET / after login: %d", home.status)
	}
	return csrf(b.e.t, home)
}

// currentID returns the current key id of the secret called name.
func (e *env) currentID(name string) string {
	e.t.Helper()
	s, _, err := e.b.Store.Load(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Current.ID
}

// lastRecord returns the last audit record with action.
func (e *env) lastRecord(action string) (audit.Record, bool) {
	recs := e.records()
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Action == action {
			return recs[i], true
		}
	}
	return audit.Record{}, false
}

func TestPageLoginSetsSessionCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := b.get("/login")
	var loginCookie *http.Cookie
	for _, c := range (&http.Response{Header: form.header}).Cookies() {
		if c.Name == "rotor_login" {
			loginCookie = c
		}
	}
	if loginCookie == nil || loginCookie.Value != csrf(t, form) || !loginCookie.HttpOnly || loginCookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login form cookie %+v: want HttpOnly, SameSite=Strict, carrying the form's CSRF token", loginCookie)
	}
	r := b.post("/login", url.Values{"csrf": {csrf(t, form)}, "token": {tokAdmin}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", r.status)
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "rotor_session" {
			sess = c
		}
	}
	switch {
	case sess == nil:
		t.Fatal("no session cookie after login")
	case !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/":
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", sess)
	case sess.Secure:
		t.Errorf("session cookie is Secure over plain HTTP: the browser would never send it back")
	case sess.MaxAge != int(server.DefaultSessionTTL.Seconds()):
		t.Errorf("session cookie Max-Age %d, want %d", sess.MaxAge, int(server.DefaultSessionTTL.Seconds()))
	case strings.Contains(sess.Value, tokAdmin) || len(sess.Value) < 43:
		t.Errorf("session cookie must be a random id of 256 bits, not the token")
	}
	if rec, ok := e.lastRecord("page.login"); !ok || rec.Status != audit.StatusSucceeded || rec.Initiator != "token:admin" {
		t.Errorf("login audited as %+v, want page.login succeeded by token:admin", rec)
	}
	e.checkNoLeaks()
}

func TestPageLoginOverTLSUsesSecureHostCookie(t *testing.T) {
	e := newEnv(t)
	tlsSrv := httptest.NewTLSServer(e.api)
	t.Cleanup(tlsSrv.Close)
	b := e.browserAt(tlsSrv)
	form := b.get("/login")
	r := b.post("/login", url.Values{"csrf": {csrf(t, form)}, "token": {tokViewer}})
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "__Host-rotor_session" {
			sess = c
		}
	}
	if r.status != http.StatusSeeOther || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login over TLS: %d, cookie %+v: want a Secure, HttpOnly, SameSite=Strict __Host- cookie", r.status, sess)
	}
	if home := b.get("/"); home.status != http.StatusOK || !strings.Contains(home.body, `id="secrets"`) {
		t.Fatalf("GET / over TLS after login: %d", home.status)
	}
}

func TestPageLoginRefusals(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		badCSRF    bool
		wantStatus int
		reason     string
	}{
		{"unknown token", "rtr_nobody_0000000000000000000000000000", false, http.StatusUnauthorized, "a token no authenticator knows"},
		{"app token", tokApp, false, http.StatusForbidden, "role app may not list secrets, so it may not see the page"},
		{"no login CSRF token", tokAdmin, true, http.StatusForbidden, "a login posted from elsewhere (login CSRF) is refused even with a good token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			form := url.Values{"token": {tc.token}, "csrf": {csrf(t, b.get("/login"))}}
			if tc.badCSRF {
				form.Set("csrf", "forged")
			}
			r := b.post("/login", form)
			if r.status != tc.wantStatus {
				t.Fatalf("%s: %d, want %d", tc.reason, r.status, tc.wantStatus)
			}
			for _, c := range (&http.Response{Header: r.header}).Cookies() {
				if c.Name == "rotor_session" {
					t.Fatalf("%s: a session cookie was set", tc.reason)
				}
			}
			if home := b.get("/"); home.status != http.StatusSeeOther || home.header.Get("Location") != "/login" {
				t.Fatalf("GET / after a refused login: %d, want 303 to /login", home.status)
			}
			if rec, ok := e.lastRecord("page.login"); !ok || rec.Status != audit.StatusDenied {
				t.Fatalf("%s: refusal not audited as denied (last page.login: %+v)", tc.reason, rec)
			}
			e.checkNoLeaks()
		})
	}
}

func TestPageAdminRotatesAfterConfirmation(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	token := b.login(tokAdmin)
	before := e.currentID("clerk")

	home := b.get("/")
	for _, want := range []string{before, `action="/secrets/clerk/rotate"`, `action="/secrets/clerk/rollback"`, `id="audit"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("admin's page lacks %q", want)
		}
	}
	confirm := b.get("/secrets/clerk/rotate")
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "Rotate clerk?") || csrf(t, confirm) != token {
		t.Fatalf("confirmation page: %d:\n%s", confirm.status, confirm.body)
	}
	if e.currentID("clerk") != before {
		t.Fatal("showing the confirmation page rotated the secret")
	}
	r := b.post("/secrets/clerk/rotate", url.Values{"csrf": {token}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("confirm: %d, want 303:\n%s", r.status, r.body)
	}
	after := e.currentID("clerk")
	if after == before {
		t.Fatal("the confirmed rotation did not rotate")
	}
	home = b.get("/")
	if !strings.Contains(home.body, "the current key is now "+after) || !strings.Contains(home.body, "<code>"+after+"</code>") {
		t.Errorf("page after rotation does not show the new key id %s", after)
	}
	if rec, ok := e.lastRecord("rotate.finish"); !ok || rec.Initiator != "token:admin" {
		t.Errorf("rotation audited as %+v, want rotate.finish by token:admin", rec)
	}
	if again := b.get("/"); strings.Contains(again.body, `id="flash"`) {
		t.Error("the flash message is shown twice")
	}
	e.checkNoLeaks()
}

func TestPageFormsWithoutCSRFTokenAreRefused(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	admin.login(tokAdmin)
	other := e.browser()
	otherToken := other.login(tokAdmin)
	before := e.currentID("clerk")
	tests := []struct {
		name, path string
		form       url.Values
		header     http.Header
		reason     string
	}{
		{"rotate without token", "/secrets/clerk/rotate", url.Values{}, nil, "a form post with no CSRF token"},
		{"rotate with another session's token", "/secrets/clerk/rotate", url.Values{"csrf": {otherToken}}, nil, "the token is per session"},
		{"rollback without token", "/secrets/clerk/rollback", url.Values{}, nil, "rollback is guarded like rotate"},
		{"logout without token", "/logout", url.Values{}, nil, "a forged logout"},
		{"cross-site post", "/secrets/clerk/rotate", url.Values{"csrf": {"x"}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}, "the browser says the form came from another site"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := admin.send(http.MethodPost, tc.path, tc.form, tc.header)
			if r.status != http.StatusForbidden {
				t.Fatalf("%s: %d, want 403", tc.reason, r.status)
			}
			if e.currentID("clerk") != before {
				t.Fatalf("%s: the secret changed", tc.reason)
			}
		})
	}
	if rec, ok := e.lastRecord("page.rotate"); !ok || rec.Status != audit.StatusDenied || rec.Initiator != "token:admin" {
		t.Errorf("refused form audited as %+v, want page.rotate denied for token:admin", rec)
	}
	if home := admin.get("/"); home.status != http.StatusOK {
		t.Errorf("the session ended after a refused logout: GET / %d", home.status)
	}
	e.checkNoLeaks()
}

func TestPageRoles(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		buttons   bool
		audit     bool
		operateOK bool
		reason    string
	}{
		{"admin", tokAdmin, true, true, true, "admin may do everything"},
		{"ci", tokCI, true, false, true, "ci may rotate and roll back but not read the audit log, as in the API"},
		{"viewer", tokViewer, false, true, false, "viewer sees the table and the trail, no buttons, and may not rotate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			token := b.login(tc.token)
			home := b.get("/")
			if !strings.Contains(home.body, e.currentID("clerk")) {
				t.Errorf("%s: the table lacks the current key id", tc.reason)
			}
			if got := strings.Contains(home.body, `action="/secrets/clerk/rotate"`); got != tc.buttons {
				t.Errorf("%s: rotate button shown = %v", tc.reason, got)
			}
			if got := strings.Contains(home.body, `id="audit"`); got != tc.audit {
				t.Errorf("%s: audit trail shown = %v", tc.reason, got)
			}
			before := e.currentID("clerk")
			confirm := b.get("/secrets/clerk/rotate")
			r := b.post("/secrets/clerk/rotate", url.Values{"csrf": {token}})
			changed := e.currentID("clerk") != before
			if tc.operateOK {
				if confirm.status != http.StatusOK || r.status != http.StatusSeeOther || !changed {
					t.Errorf("%s: confirm %d, post %d, rotated %v", tc.reason, confirm.status, r.status, changed)
				}
				return
			}
			if confirm.status != http.StatusForbidden || r.status != http.StatusForbidden || changed {
				t.Errorf("%s: confirm %d, post %d (want 403, 403), rotated %v", tc.reason, confirm.status, r.status, changed)
			}
			if rec, ok := e.lastRecord("page.rotate"); !ok || rec.Status != audit.StatusDenied || rec.Secret != "clerk" {
				t.Errorf("%s: refusal audited as %+v", tc.reason, rec)
			}
		})
	}
}

func TestPageLogoutEndsSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	token := b.login(tokAdmin)
	var cookie *http.Cookie
	for _, c := range b.c.Jar.Cookies(mustURL(t, b.base)) {
		if c.Name == "rotor_session" {
			cookie = c
		}
	}
	if r := b.post("/logout", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("logout: %d", r.status)
	}
	// A copy of the old cookie is worth nothing: the session is gone
	// from the server, not only from the browser.
	replay := e.browser()
	replay.c.Jar.SetCookies(mustURL(t, b.base), []*http.Cookie{cookie})
	if r := replay.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("old session cookie after logout: %d, want 303 to /login", r.status)
	}
	if r := replay.post("/secrets/clerk/rotate", url.Values{"csrf": {token}}); r.status != http.StatusUnauthorized {
		t.Fatalf("rotate with the old session after logout: %d, want 401", r.status)
	}
}

func TestPageSessionExpires(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(tokViewer)
	e.b.Clock.Advance(server.DefaultSessionTTL - 1)
	if r := b.get("/"); r.status != http.StatusOK {
		t.Fatalf("GET / just before expiry: %d, want 200", r.status)
	}
	e.b.Clock.Advance(1)
	if r := b.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("GET / at expiry: %d, want 303 to /login (sessions are not extended by use)", r.status)
	}
}

func TestPageSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(tokAdmin)
	for _, path := range []string{"/", "/login", "/secrets/clerk/rotate", "/page.css"} {
		r := b.get(path)
		want := map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "no-store",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		}
		for h, v := range want {
			if got := r.header.Get(h); got != v {
				t.Errorf("%s: %s = %q, want %q", path, h, got, v)
			}
		}
	}
}

func TestPageShowsAuditChainState(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(tokViewer)
	tests := []struct {
		name   string
		report func()
		want   string
	}{
		{"before any check", func() {}, "Audit chain: <strong>unknown</strong>"},
		{"verified", func() { e.api.AuditVerified(nil) }, "Audit chain: <strong>verified</strong>"},
		{"broken", func() { e.api.AuditVerified(errors.New("record 7: hash does not chain")) }, "Audit chain: <strong>broken</strong>, checked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.report()
			if r := b.get("/"); !strings.Contains(r.body, tc.want) {
				t.Fatalf("page lacks %q", tc.want)
			}
		})
	}
	if r := b.get("/"); !strings.Contains(r.body, "record 7: hash does not chain") {
		t.Error("a broken chain's problem is not shown")
	}
}

func TestPageNotServedWithoutOverviewer(t *testing.T) {
	// A backend that cannot give an overview gets the API alone.
	e := newEnvWith(t, func(b *servertest.Backend) server.Backend { return struct{ server.Backend }{b} })
	if r := e.do(http.MethodGet, "/", "", ""); r.status != http.StatusNotFound || r.errorCode() != server.CodeNotFound {
		t.Fatalf("GET / without a page: %d %s, want the API's JSON 404", r.status, r.errorCode())
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPageSessionsAreBounded(t *testing.T) {
	e := newEnv(t, server.WithPageSessions(server.DefaultSessionTTL, 2))
	first, second, third := e.browser(), e.browser(), e.browser()
	first.login(tokViewer)
	e.b.Clock.Advance(1) // first expires first
	second.login(tokViewer)
	third.login(tokAdmin)
	if r := first.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("the session closest to expiry is still there with a full table: GET / %d, want 303", r.status)
	}
	for name, b := range map[string]*browser{"second": second, "third": third} {
		if r := b.get("/"); r.status != http.StatusOK {
			t.Errorf("%s session ended: GET / %d", name, r.status)
		}
	}
}

func TestPageShowsAFailedOperation(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	token := b.login(tokAdmin)
	if home := b.get("/"); strings.Contains(home.body, `action="/secrets/other/rollback"`) {
		t.Error("a secret with no previous key has a Roll back button")
	}
	r := b.post("/secrets/other/rollback", url.Values{"csrf": {token}})
	if r.status != http.StatusConflict || !strings.Contains(r.body, "rollback other failed") {
		t.Fatalf("rollback with nothing to roll back: %d, want 409 and a page that says so:\n%s", r.status, r.body)
	}
	if r := b.post("/secrets/other/revoke", url.Values{"csrf": {token}}); r.status != http.StatusNotFound {
		t.Errorf("an operation the page does not offer: %d, want 404", r.status)
	}
	e.checkNoLeaks()
}
