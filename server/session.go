package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/authz"
)

// Defaults of the status page's sessions (see [WithPageSessions]).
const (
	DefaultSessionTTL  = 8 * time.Hour
	DefaultMaxSessions = 10000
)

// session is a browser logged in to the status page. The cookie carries
// a random id; the principal the API token authenticated as stays here,
// so neither the token nor anything derived from it leaves the server.
type session struct {
	p       authz.Principal
	csrf    string    // the token every form of this session carries
	expires time.Time // absolute: a session is not extended by use
	flash   string    // one message for the next page, then dropped
}

// sessions holds the status page's sessions in memory, keyed by a hash of
// their ids (a memory dump yields no usable cookie). They end with the
// process, as do the API tokens it was started with.
type sessions struct {
	mu    sync.Mutex
	m     map[[32]byte]*session
	ttl   time.Duration
	limit int
	now   func() time.Time
}

func newSessions(ttl time.Duration, limit int, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, limit: limit, now: now}
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// create starts a session for p and returns its id and CSRF token. When
// the table is full it drops expired sessions, then the one closest to
// expiry: memory stays bounded whatever logs in.
func (ss *sessions) create(p authz.Principal) (id string, sess session) {
	now := ss.now()
	sess = session{p: p, csrf: randomToken(), expires: now.Add(ss.ttl)}
	id = randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.limit {
		var oldest [32]byte
		var first time.Time
		for k, s := range ss.m {
			if !now.Before(s.expires) {
				delete(ss.m, k)
				continue
			}
			if first.IsZero() || s.expires.Before(first) {
				oldest, first = k, s.expires
			}
		}
		if len(ss.m) >= ss.limit {
			delete(ss.m, oldest)
		}
	}
	s := sess
	ss.m[sessionKey(id)] = &s
	return id, sess
}

// get returns the live session with id, and drops its flash message (it
// is shown once).
func (ss *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := sessionKey(id)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return session{}, false
	}
	if !ss.now().Before(s.expires) {
		delete(ss.m, k)
		return session{}, false
	}
	out := *s
	s.flash = ""
	return out, true
}

// setFlash keeps msg for the session's next page.
func (ss *sessions) setFlash(id, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.m[sessionKey(id)]; ok {
		s.flash = msg
	}
}

// delete ends the session with id.
func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sessionKey(id))
}

// sameToken compares a submitted CSRF token with the expected one in
// constant time; an empty expected token matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
