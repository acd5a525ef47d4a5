package server

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
)

// Overviewer is the optional interface of a [Backend] that the status page
// reads: the server serves the page at / only when its backend implements
// it.
type Overviewer interface {
	// Overview returns the secret called name as stored, with its
	// schedule. Errors follow the rules of [Backend].
	Overview(ctx context.Context, name string) (Overview, error)
}

// Overview is a secret's stored state and schedule, for the status page.
type Overview struct {
	// Secret is the secret as stored. The page shows its key ids and
	// times, never a value.
	Secret *store.Secret
	// Provider names the secret's provider, e.g. "clerk".
	Provider string
	// NextRotationAt is when the schedule rotates the secret next; zero
	// when it is due now.
	NextRotationAt time.Time
}

// ChainState is what the status page says of the audit chain: the
// outcome of the last check reported with [Server.AuditVerified].
type ChainState struct {
	// State is "unknown" (not checked yet), "verified" or "broken".
	State string
	// CheckedAt is when the last check finished; zero when unknown.
	CheckedAt time.Time
	// Problem is the last check's error, when broken.
	Problem string
}

// WithPageSessions sets how long a status page login lasts (default
// [DefaultSessionTTL], not extended by use) and how many sessions the
// server keeps (default [DefaultMaxSessions]; beyond it the one closest
// to expiry ends).
func WithPageSessions(ttl time.Duration, limit int) Option {
	return func(o *options) { o.sessionTTL, o.maxSessions = ttl, limit }
}

// pageFiles are the status page's templates and style sheet: no
// front-end build, no script.
//
//go:embed page
var pageFiles embed.FS

// pageAuditRecords is how many audit records the page shows.
const pageAuditRecords = 50

// maxFormSize bounds the page's form bodies (a token and a CSRF token).
const maxFormSize = 8 << 10

// Cookies of the status page. With TLS they carry the __Host- prefix:
// the browser then accepts them only from this origin, Secure, on path /.
const (
	sessionCookie = "rotor_session"
	loginCookie   = "rotor_login" // the login form's CSRF token (double submit)
)

// pageCSP lets the page load only its own style sheet: no script, no
// inline style, no framing, forms posted only here.
const pageCSP = "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// page serves the status page: its templates, sessions and the audit
// chain's state.
type page struct {
	s        *Server
	ov       Overviewer
	sessions *sessions
	tmpl     map[string]*template.Template
	cop      *http.CrossOriginProtection

	mu    sync.Mutex
	chain ChainState
}

func (s *Server) pageRoutes() error {
	ov, ok := s.backend.(Overviewer)
	if !ok {
		return nil
	}
	p := &page{s: s, ov: ov, sessions: newSessions(s.opts.sessionTTL, s.opts.maxSessions, s.opts.now),
		tmpl: map[string]*template.Template{}, cop: http.NewCrossOriginProtection(), chain: ChainState{State: "unknown"}}
	funcs := template.FuncMap{"when": p.when, "ago": p.ago}
	for _, name := range []string{"home", "login", "confirm", "message"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(pageFiles, "page/layout.html", "page/"+name+".html")
		if err != nil {
			return fmt.Errorf("server: status page templates: %w", err)
		}
		p.tmpl[name] = t
	}
	p.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.refuse(w, r, "page.post", "", anonymous(r), http.StatusForbidden, "cross-origin request refused", "cross-origin form post (Sec-Fetch-Site/Origin)")
	}))
	s.page = p
	handle := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, p.headers(p.cop.Handler(h))) }
	handle("GET /{$}", p.home)
	handle("GET /login", p.loginForm)
	handle("POST /login", p.login)
	handle("POST /logout", p.logout)
	handle("GET /secrets/{name}/{op}", p.confirm)
	handle("POST /secrets/{name}/{op}", p.operate)
	css, err := pageFiles.ReadFile("page/page.css")
	if err != nil {
		return fmt.Errorf("server: status page style sheet: %w", err)
	}
	s.mux.Handle("GET /page.css", p.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(css)
	})))
	return nil
}

// AuditVerified records the outcome of a check of the audit chain (nil:
// verified), for the status page. serve and the daemon call it after
// every periodic check (see audit.Verifier).
func (s *Server) AuditVerified(err error) {
	if s.page == nil {
		return
	}
	st := ChainState{State: "verified", CheckedAt: s.opts.now()}
	if err != nil {
		st.State, st.Problem = "broken", clip(err.Error())
	}
	s.page.mu.Lock()
	s.page.chain = st
	s.page.mu.Unlock()
}

// headers sets the page's security headers on every answer.
func (p *page) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pageCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// cookieName returns a cookie's name for r's connection: __Host-name
// when the browser sees https.
func (p *page) cookieName(r *http.Request, name string) string {
	if p.secure(r) {
		return "__Host-" + name
	}
	return name
}

// secure reports whether the browser talks https to us: TLS here, or at
// the proxy [WithPlaintextValues] says is in front.
func (p *page) secure(r *http.Request) bool { return r.TLS != nil || p.s.opts.plaintext }

func (p *page) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: p.cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (p *page) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(p.cookieName(r, name))
	if err != nil {
		return ""
	}
	return c.Value
}

// session returns the request's live session and its id.
func (p *page) session(r *http.Request) (string, session, bool) {
	id := p.cookie(r, sessionCookie)
	sess, ok := p.sessions.get(id)
	return id, sess, ok
}

// view is what every template gets.
type view struct {
	Title   string
	Subject string
	Role    authz.Role
	CSRF    string
	Flash   string
	Now     time.Time
	Data    any
}

func (p *page) render(w http.ResponseWriter, status int, name string, v view) {
	v.Now = p.s.opts.now()
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		p.s.opts.log.Error("render the status page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message answers with a page that says msg.
func (p *page) message(w http.ResponseWriter, status int, title, msg string, sess *session) {
	v := view{Title: title, Data: msg}
	if sess != nil {
		v.Subject, v.Role, v.CSRF = sess.p.Subject, sess.p.Role, sess.csrf
	}
	p.render(w, status, "message", v)
}

// refuse records a refused request like the API's refusals (action
// "page.<what>", rate limited alike) and answers with a page.
func (p *page) refuse(w http.ResponseWriter, r *http.Request, action, secret, initiator string, status int, msg, detail string) {
	if p.s.deny(w, r, action, secret, initiator, detail) {
		p.tooMany(w)
		return
	}
	p.message(w, status, http.StatusText(status), msg, nil)
}

// tooMany answers a caller refused too often, like the API's 429.
func (p *page) tooMany(w http.ResponseWriter) {
	w.Header().Set("Retry-After", p.s.denials.retryAfter())
	p.message(w, http.StatusTooManyRequests, "Too many refused requests", "Too many refused requests; slow down.", nil)
}

// parseForm reads a small urlencoded form.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	return r.ParseForm() == nil
}

func (p *page) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := p.session(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p.showLogin(w, r, http.StatusOK, "")
}

// showLogin renders the login form with a fresh login CSRF token, sent
// both as a cookie and in the form: a post must carry both, equal.
func (p *page) showLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	tok := randomToken()
	p.setCookie(w, r, loginCookie, tok, 3600)
	p.render(w, status, "login", view{Title: "Log in", CSRF: tok, Flash: problem})
}

func (p *page) login(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		p.message(w, http.StatusBadRequest, "Bad request", "The form could not be read.", nil)
		return
	}
	if !sameToken(r.PostForm.Get("csrf"), p.cookie(r, loginCookie)) {
		p.refuse(w, r, "page.login", "", anonymous(r), http.StatusForbidden,
			"The login form expired or did not come from this page. Reload it and try again.", "login form without a valid CSRF token")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		p.showLogin(w, r, http.StatusBadRequest, "Enter an API token.")
		return
	}
	pr, err := p.s.auth.Authenticate(r.Context(), token)
	if err != nil {
		detail := err.Error()
		if claimed := authz.UnverifiedSubject(token); claimed != "" {
			detail += "; claimed (unverified) identity " + claimed
		}
		if p.s.deny(w, r, "page.login", "", anonymous(r), detail) {
			p.tooMany(w)
			return
		}
		p.showLogin(w, r, http.StatusUnauthorized, "That token was not accepted.")
		return
	}
	if pr.Subject == "" {
		pr.Subject = "unknown"
	}
	if !authz.Allowed(pr, authz.ActionList, "") {
		why := refusal(pr, authz.ActionList, "")
		p.refuse(w, r, "page.login", "", pr.Subject, http.StatusForbidden, "This token may not see the status page: "+why+".", why)
		return
	}
	// A login is audited like the opening of a watch stream: no record,
	// no session.
	if _, err := p.s.audit.Append(context.WithoutCancel(r.Context()), audit.Event{
		Initiator: pr.Subject, Action: "page.login", Status: audit.StatusSucceeded,
		Detail: clipTo(fmt.Sprintf("status page login from %s, role %s", remoteHost(r), pr.Role), maxDetailLen),
	}); err != nil {
		p.s.opts.log.Error("audit a status page login", "initiator", pr.Subject, "err", err)
		p.message(w, http.StatusInternalServerError, "Login failed", "The login could not be recorded in the audit log; try again later.", nil)
		return
	}
	id, _ := p.sessions.create(pr)
	p.setCookie(w, r, loginCookie, "", -1)
	p.setCookie(w, r, sessionCookie, id, int(p.s.opts.sessionTTL/time.Second))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// posted returns the session of a form post that carries the session's
// CSRF token; otherwise it answers the request (refused, audited) and
// returns false.
func (p *page) posted(w http.ResponseWriter, r *http.Request, action, secret string) (string, session, bool) {
	id, sess, ok := p.session(r)
	if !ok {
		p.refuse(w, r, action, secret, anonymous(r), http.StatusUnauthorized, "You are not logged in (or your session expired).", "no status page session")
		return "", session{}, false
	}
	if !parseForm(w, r) || !sameToken(r.PostForm.Get("csrf"), sess.csrf) {
		p.refuse(w, r, action, secret, sess.p.Subject, http.StatusForbidden,
			"This form did not come from your status page session. Go back, reload, and try again.", "form without the session's CSRF token")
		return "", session{}, false
	}
	return id, sess, true
}

func (p *page) logout(w http.ResponseWriter, r *http.Request) {
	id, sess, ok := p.posted(w, r, "page.logout", "")
	if !ok {
		return
	}
	p.sessions.delete(id)
	p.setCookie(w, r, sessionCookie, "", -1)
	if _, err := p.s.audit.Append(context.WithoutCancel(r.Context()), audit.Event{
		Initiator: sess.p.Subject, Action: "page.logout", Status: audit.StatusSucceeded,
		Detail: "status page logout from " + remoteHost(r),
	}); err != nil {
		p.s.opts.log.Error("audit a status page logout", "initiator", sess.p.Subject, "err", err)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// keyView is a key as the page shows it: its id and times.
type keyView struct {
	ID              string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	IssuerExpiresAt time.Time
	State           string
}

func viewKey(k *store.Key) *keyView {
	if k == nil {
		return nil
	}
	return &keyView{ID: k.ID, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, IssuerExpiresAt: k.IssuerExpiresAt(), State: string(k.State)}
}

// rotationView is an operation in progress.
type rotationView struct {
	ID, Kind, Step, Initiator, Holder string
	StartedAt, LeaseExpiresAt         time.Time
}

// row is one secret on the page.
type row struct {
	Name, Provider                   string
	Current, Previous, Next, Pending *keyView
	NextRotationAt                   time.Time
	Rotation                         *rotationView
	CanRotate, CanRollback           bool
	Problem                          string
}

type homeData struct {
	Rows         []row
	ShowAudit    bool
	Records      []audit.Record
	AuditProblem string
	Chain        ChainState
}

func (p *page) home(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := p.session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	pr := sess.p
	names, err := p.s.backend.Names(r.Context())
	if err != nil {
		p.s.opts.log.Error("status page: list secrets", "err", err)
		p.message(w, http.StatusInternalServerError, "Error", "The secrets could not be listed; the server log has the details.", &sess)
		return
	}
	var d homeData
	for _, n := range names {
		if authz.Allowed(pr, authz.ActionStatus, n) {
			d.Rows = append(d.Rows, p.row(r.Context(), pr, n))
		}
	}
	if authz.Allowed(pr, authz.ActionAudit, "") {
		d.ShowAudit = true
		recs, err := p.s.audit.Tail(r.Context(), pageAuditRecords)
		if err != nil {
			p.s.opts.log.Error("status page: read the audit log", "err", err)
			d.AuditProblem = "The audit log could not be read; the server log has the details."
		}
		d.Records = visibleRecords(pr, recs)
		slices.Reverse(d.Records)
		p.mu.Lock()
		d.Chain = p.chain
		p.mu.Unlock()
	}
	p.render(w, http.StatusOK, "home", view{Title: "Status", Subject: pr.Subject, Role: pr.Role, CSRF: sess.csrf, Flash: sess.flash, Data: d})
}

// row loads one secret's row; a secret that cannot be loaded gets a row
// that says so.
func (p *page) row(ctx context.Context, pr authz.Principal, name string) row {
	rw := row{Name: name, CanRotate: authz.Allowed(pr, authz.ActionRotate, name), CanRollback: authz.Allowed(pr, authz.ActionRollback, name)}
	ov, err := p.ov.Overview(ctx, name)
	if err != nil {
		status, d := classify(err)
		if status == http.StatusInternalServerError {
			p.s.opts.log.Error("status page: load a secret", "secret", name, "err", err)
		}
		rw.Problem = d.Message
		return rw
	}
	rw.Provider, rw.NextRotationAt = ov.Provider, ov.NextRotationAt
	if s := ov.Secret; s != nil {
		rw.Current, rw.Previous, rw.Next, rw.Pending = viewKey(s.Current), viewKey(s.Previous), viewKey(s.Next), viewKey(s.Pending)
		if ro := s.Rotation; ro != nil {
			rw.Rotation = &rotationView{ID: ro.ID, Kind: string(ro.OpKind()), Step: string(ro.Step), Initiator: ro.Initiator,
				Holder: ro.Holder, StartedAt: ro.StartedAt, LeaseExpiresAt: ro.LeaseExpiresAt}
		}
	}
	return rw
}

// visibleRecords returns the records p may see: all of them, or for a
// caller limited to some secrets only the records about them.
func visibleRecords(p authz.Principal, recs []audit.Record) []audit.Record {
	out := []audit.Record{}
	for _, rec := range recs {
		if len(p.Secrets) == 0 || rec.Secret != "" && p.Grants(rec.Secret) {
			out = append(out, rec)
		}
	}
	return out
}

// pageOps are the operations the page offers, with their role rule.
var pageOps = map[string]authz.Action{"rotate": authz.ActionRotate, "rollback": authz.ActionRollback}

// operation returns the secret, operation and action of a
// /secrets/{name}/{op} request, or answers 404 and returns false.
func (p *page) operation(w http.ResponseWriter, r *http.Request) (name, op string, action authz.Action, ok bool) {
	name, op = r.PathValue("name"), r.PathValue("op")
	action, known := pageOps[op]
	if !known || store.ValidateName(name) != nil {
		p.message(w, http.StatusNotFound, "Not found", "No such page.", nil)
		return "", "", "", false
	}
	return name, op, action, true
}

// allowed applies the API's role rule to sess and action on the secret
// called name; a refusal is answered, audited as page.<op>, and false.
func (p *page) allowed(w http.ResponseWriter, r *http.Request, sess session, action authz.Action, op, name string) bool {
	if authz.Allowed(sess.p, action, name) {
		return true
	}
	why := refusal(sess.p, action, name)
	p.refuse(w, r, "page."+op, name, sess.p.Subject, http.StatusForbidden, "Refused: "+why+".", why)
	return false
}

type confirmData struct {
	Op, Secret string
	Row        row
}

// confirm shows "Rotate X? [Confirm]": the buttons of the table only
// lead here, and only the form here changes anything.
func (p *page) confirm(w http.ResponseWriter, r *http.Request) {
	name, op, action, ok := p.operation(w, r)
	if !ok {
		return
	}
	_, sess, ok := p.session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !p.allowed(w, r, sess, action, op, name) {
		return
	}
	d := confirmData{Op: op, Secret: name, Row: p.row(r.Context(), sess.p, name)}
	p.render(w, http.StatusOK, "confirm", view{Title: "Confirm " + op, Subject: sess.p.Subject, Role: sess.p.Role, CSRF: sess.csrf, Data: d})
}

// operate runs a confirmed rotate or rollback with the same role rule as
// the API, under the caller's identity, detached from the browser like
// the API's operations, then shows the table again.
func (p *page) operate(w http.ResponseWriter, r *http.Request) {
	name, op, action, ok := p.operation(w, r)
	if !ok {
		return
	}
	id, sess, ok := p.posted(w, r, "page."+op, name)
	if !ok || !p.allowed(w, r, sess, action, op, name) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.s.opts.opTimeout)
	defer cancel()
	var err error
	switch action {
	case authz.ActionRotate:
		_, err = p.s.backend.Rotate(ctx, name, sess.p.Subject)
	case authz.ActionRollback:
		_, err = p.s.backend.Rollback(ctx, name, sess.p.Subject)
	}
	p.s.Notify(name)
	if err != nil {
		status, d := classify(err)
		if status == http.StatusInternalServerError {
			p.s.opts.log.Error("status page operation failed", "op", op, "secret", name, "err", err)
		}
		p.message(w, status, op+" "+name+" failed", d.Message, &sess)
		return
	}
	msg := fmt.Sprintf("%s %s: done.", op, name)
	if ov, err := p.ov.Overview(ctx, name); err == nil && ov.Secret != nil && ov.Secret.Current != nil {
		msg = fmt.Sprintf("%s %s: done; the current key is now %s.", op, name, ov.Secret.Current.ID)
	}
	p.sessions.setFlash(id, msg)
	http.Redirect(w, r, "/#secret-"+name, http.StatusSeeOther)
}

// when formats t for the page, in UTC.
func (p *page) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how far t is from now: "3d 4h ago", "in 5h 10m".
func (p *page) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(p.s.opts.now())
	if d > -time.Minute && d < time.Minute {
		return "now"
	}
	if d < 0 {
		return roughly(-d) + " ago"
	}
	return "in " + roughly(d)
}

func roughly(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
