// Package clerkfake is a local stand-in for Clerk's Backend API, for tests.
//
// A [Server] is one Clerk instance on a loopback httptest server. It holds
// several active instance secret keys (sk_test_… or sk_live_… by the
// instance's environment) and answers, as Clerk does:
//
//   - GET /v1/jwks: 200 and the instance's JSON Web Key Set for a valid
//     instance key; 401 clerk_key_invalid for an unknown or deleted one.
//   - GET /v1/users and GET /v1/users/count: a small fixed user list.
//   - GET /v1/machines/{id}, GET /v1/machines/{id}/secret_key and
//     POST /v1/machines/{id}/secret_key/rotate (instance key), the last
//     honouring previous_token_ttl (0…28800 s) on the server's clock.
//   - GET /v1/m2m_tokens?subject={id}: authenticated by a machine secret
//     key (its own machine only) or an instance key.
//
// # Platform API
//
// The instance belongs to an application (id [Server.ApplicationID]) that
// Clerk's Platform API manages, authenticated by a workspace's Platform API
// access token ([WithPlatformToken]; without one every Platform call
// answers 401). The three routes rotor uses follow Clerk's published
// OpenAPI document (clerk/openapi-specs, platform/beta.yml), named here by
// their operation ids:
//
//   - PlatformRotateInstanceSecretKeys: POST
//     /v1/platform/applications/{applicationID}/instances/{envOrInsID}/rotate_secret_keys,
//     envOrInsID being the instance's environment type (development for a
//     test instance, production for a live one) or its id. The body
//     {"delay_old_secrets_expiration_hours": n, "reason": "…"} (no other
//     field) creates a new instance key, returned only in this answer
//     ({application_id, name, instances: [{instance_id, environment_type,
//     secret_key}]}), and schedules every older key for deletion n hours
//     later on the server's clock (an absent delay is 0: deleted at once);
//     until then both are valid.
//   - PlatformRotateSecretKeys: POST
//     /v1/platform/applications/{applicationID}/rotate_secret_keys, the
//     same for every instance of the application (here: the one).
//   - PlatformGetApplication: GET /v1/platform/applications/{applicationID},
//     with instances[].secret_key (the newest active key) only when
//     include_secret_keys=true, and instances[].publishable_key.
//
// A wrong or missing token answers 401 authentication_invalid; an unknown
// application or instance 404 resource_not_found; a malformed body 400.
// [Server.PlatformRotations] lists the rotate calls that took effect.
//
// # Test control
//
// Clerk has no Backend API to create or delete instance keys (the Dashboard does
// it); the test-only admin API stands in for the Dashboard, in Go
// ([Server.AddKey], [Server.DeleteKey]) and over HTTP for hook commands:
// POST /_admin/keys {"name":…} → 201 {"id","name","secret"}, and
// DELETE /_admin/keys {"secret":…} or {"id":…} → 204 (404 when unknown).
//
// The instance signs session tokens with an RSA key of its own, whose
// public half GET /v1/jwks serves, so that SDKs can verify tokens end to
// end. Clerk's Frontend API issues them to signed-in browsers; here the
// admin API does ([Server.SessionToken], POST /_admin/session_tokens
// {"sub":…} → 201 {"jwt":…}; GET /_admin/instance → {"environment",
// "publishable_key", "application_id", "instance_id"}). Their iat, nbf
// and exp come from the wall clock, not the server's, since the verifying
// SDKs use the wall clock.
//
// The clock is the server's own ([Server.SetNow], [Server.Advance], POST
// /_admin/clock {"advance_seconds":…} → 200 {"now"}), so grace periods and
// deletion delays pass without sleeping, and [Server.FailNext] and
// [Server.FailNextOn] make the next API responses fail for retry tests.
package clerkfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxPreviousTokenTTL is the largest previous_token_ttl Clerk accepts, in
// seconds (8 hours).
const MaxPreviousTokenTTL = 28800

// Server is a fake Clerk instance. Its methods are safe for concurrent use.
type Server struct {
	srv      *httptest.Server
	env      string // "test" or "live"
	first    string // the key New created
	seedKeys []string
	appID    string
	token    string // Platform API access token; "" accepts none
	listener net.Listener
	signer   func() *rsa.PrivateKey // signs session tokens; GET /v1/jwks serves its public key

	mu       sync.Mutex
	now      time.Time
	seq      int
	keys     map[string]*instanceKey // by value
	machines map[string]*machine     // by id
	fail     []failure
	requests map[string]int // by route pattern
	rotated  []PlatformRotation
}

type instanceKey struct {
	id, name, value string
	seq             int
	createdAt       time.Time
	deleteAt        time.Time // zero: not scheduled for deletion
}

// activeAt reports whether the key is still valid at now: it has not
// reached a deletion scheduled by a Platform rotate.
func (k *instanceKey) activeAt(now time.Time) bool {
	return k.deleteAt.IsZero() || now.Before(k.deleteAt)
}

// PlatformRotation is one Platform API rotate call that took effect.
type PlatformRotation struct {
	DelayHours int
	Reason     string
	// NewKeyID is the emulator's id of the key the call created.
	NewKeyID string
}

type machine struct {
	id, name    string
	secret      string
	previous    string
	previousEnd time.Time // previous is valid strictly before this
	rotations   int
	lastTTL     int
}

type failure struct {
	pattern    string // "" for any route
	status     int
	retryAfter time.Duration
	acted      bool // the request takes effect; only its answer is lost
}

// Option configures a Server.
type Option func(*Server)

// Live makes the instance a production one: its keys are sk_live_….
func Live() Option { return func(s *Server) { s.env = "live" } }

// TB is the part of [testing.TB] that [New] needs. It is an interface of
// its own so that programs which are not tests (the benchmark command) can
// use this package without linking the testing package.
type TB interface {
	Helper()
	Cleanup(func())
}

// WithKeys starts the instance with these active instance keys instead of
// one it makes up; [Server.Key] returns the first. Values are taken as
// given, so a test can hand the same keys to the application it starts.
func WithKeys(values ...string) Option {
	return func(s *Server) { s.seedKeys = append(s.seedKeys, values...) }
}

// WithPlatformToken makes token the Platform API access token the server
// accepts.
func WithPlatformToken(token string) Option { return func(s *Server) { s.token = token } }

// WithApplicationID sets the application's id (default "app_emulator").
func WithApplicationID(id string) Option { return func(s *Server) { s.appID = id } }

// WithListener serves on ln (for a fixed address) instead of a new
// loopback port. The server closes it.
func WithListener(ln net.Listener) Option { return func(s *Server) { s.listener = ln } }

// New starts a fake Clerk instance with one active instance key and stops
// it when the test t ends. t is a *testing.T or *testing.B.
func New(t TB, opts ...Option) *Server {
	t.Helper()
	s := Start(opts...)
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake Clerk instance with one active instance key, for
// programs such as the benchmark that are not tests. Close stops it.
func Start(opts ...Option) *Server {
	s := &Server{
		env:      "test",
		appID:    "app_emulator",
		now:      time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		keys:     map[string]*instanceKey{},
		machines: map[string]*machine{},
		requests: map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	// Made on first use: most tests never look at a token.
	s.signer = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("clerkfake: generate the instance signing key: " + err.Error())
		}
		return k
	})
	s.srv = httptest.NewUnstartedServer(s.routes())
	if s.listener != nil {
		s.srv.Listener.Close()
		s.srv.Listener = s.listener
	}
	s.srv.Start()
	for _, v := range s.seedKeys {
		s.seq++
		s.keys[v] = &instanceKey{id: "key_" + strconv.Itoa(s.seq), name: "Secret key " + strconv.Itoa(s.seq), value: v, seq: s.seq, createdAt: s.now}
	}
	if len(s.seedKeys) > 0 {
		s.first = s.seedKeys[0]
	} else {
		s.first = s.AddKey()
	}
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL returns the API's base URL, without /v1 (what rotor's api_url and
// CLERK_API_URL take).
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Environment returns "test" or "live".
func (s *Server) Environment() string { return s.env }

// Key returns the value of the instance key New created (deleted or not).
func (s *Server) Key() string { return s.first }

// AddKey creates an active instance secret key, as "Add new key" in the
// Dashboard does, and returns its value.
func (s *Server) AddKey() string {
	_, v := s.AddNamedKey("")
	return v
}

// AddNamedKey creates an active instance key with a Dashboard name and
// returns its id and value.
func (s *Server) AddNamedKey(name string) (id, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addKeyLocked(name)
}

func (s *Server) addKeyLocked(name string) (id, value string) {
	s.seq++
	id = "key_" + strconv.Itoa(s.seq)
	if name == "" {
		name = "Secret key " + strconv.Itoa(s.seq)
	}
	k := &instanceKey{id: id, name: name, value: "sk_" + s.env + "_" + randomString(40), seq: s.seq, createdAt: s.now}
	s.keys[k.value] = k
	return k.id, k.value
}

// DeleteKey deletes the instance key with that value, as the Dashboard
// does. It reports whether the key existed.
func (s *Server) DeleteKey(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.activeKey(value) != nil
	delete(s.keys, value)
	return ok
}

// KeyCount returns how many instance keys are active.
func (s *Server) KeyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.keys {
		if k.activeAt(s.now) {
			n++
		}
	}
	return n
}

// KeyName returns the Dashboard name of an active key, or "".
func (s *Server) KeyName(value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.activeKey(value); k != nil {
		return k.name
	}
	return ""
}

// KeyDeleteAt returns when a Platform rotate scheduled the key's deletion
// (zero when it is not scheduled or unknown).
func (s *Server) KeyDeleteAt(value string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[value]; k != nil {
		return k.deleteAt
	}
	return time.Time{}
}

// activeKey returns the instance key with that value if it is valid now.
func (s *Server) activeKey(value string) *instanceKey {
	if k := s.keys[value]; k != nil && k.activeAt(s.now) {
		return k
	}
	return nil
}

// ApplicationID returns the id of the application the instance belongs to.
func (s *Server) ApplicationID() string { return s.appID }

// InstanceID returns the instance's id (ins_…).
func (s *Server) InstanceID() string { return "ins_emulator_" + s.environmentType() }

// environmentType is the Platform API's name of the instance's
// environment: development (sk_test_ keys) or production (sk_live_).
func (s *Server) environmentType() string {
	if s.env == "live" {
		return "production"
	}
	return "development"
}

// PlatformRotations returns the Platform API rotate calls that took effect,
// oldest first.
func (s *Server) PlatformRotations() []PlatformRotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PlatformRotation(nil), s.rotated...)
}

// AddMachine creates a machine and returns its id (mch_…) and its secret
// key.
func (s *Server) AddMachine(name string) (id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &machine{id: "mch_" + randomString(24), name: name, secret: machineSecret()}
	s.machines[m.id] = m
	return m.id, m.secret
}

// MachineSecret returns a machine's current secret key, or "".
func (s *Server) MachineSecret(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machines[id]; m != nil {
		return m.secret
	}
	return ""
}

// Rotations returns how many times a machine's key was rotated and the
// previous_token_ttl of the last rotation.
func (s *Server) Rotations(id string) (n, lastTTL int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machines[id]; m != nil {
		return m.rotations, m.lastTTL
	}
	return 0, 0
}

// Now returns the server's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// SetNow sets the server's clock. It only moves when told to.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t
}

// Advance moves the server's clock forward by d.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// FailNext makes the next n API responses (any /v1 route) answer
// status with a Clerk error body instead.
func (s *Server) FailNext(n, status int) { s.FailNextRetryAfter(n, status, 0) }

// FailNextRetryAfter is FailNext with a Retry-After header (whole seconds)
// when retryAfter > 0.
func (s *Server) FailNextRetryAfter(n, status int, retryAfter time.Duration) {
	s.FailNextOn("", n, status, retryAfter)
}

// FailNextOn makes the next n requests of the route pattern (as
// [Server.Requests] names it; "" for any /v1 route) answer status, with a
// Retry-After header when retryAfter > 0, without acting on them.
func (s *Server) FailNextOn(pattern string, n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{pattern: pattern, status: status, retryAfter: retryAfter})
	}
}

// LoseNextAnswer makes the next request of the route pattern take effect
// and then answer status, as a proxy does that times out after the server
// acted: the caller cannot tell it from a request that never arrived.
func (s *Server) LoseNextAnswer(pattern string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, failure{pattern: pattern, status: status, acted: true})
}

// Requests returns how many requests matched a route, named by its pattern
// ("GET /v1/jwks", "POST /v1/machines/{id}/secret_key/rotate"); injected
// failures count too.
func (s *Server) Requests(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[pattern]
}

// AllRequests returns a copy of every route's request count.
func (s *Server) AllRequests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests[pattern]++
			var f *failure
			for i := range s.fail {
				if p := s.fail[i].pattern; p == "" || p == pattern {
					f = &failure{}
					*f = s.fail[i]
					s.fail = append(s.fail[:i], s.fail[i+1:]...)
					break
				}
			}
			s.mu.Unlock()
			w.Header().Set("Clerk-Trace-Id", "trace_"+randomString(8))
			if f != nil {
				if f.acted {
					h(httptest.NewRecorder(), r)
				}
				if f.retryAfter > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
				}
				code := "internal_clerk_error"
				if f.status == http.StatusTooManyRequests {
					code = "too_many_requests"
				}
				writeError(w, f.status, code, http.StatusText(f.status))
				return
			}
			h(w, r)
		})
	}
	api("GET /v1/jwks", s.instance(s.jwks))
	api("GET /v1/users", s.instance(s.users))
	api("GET /v1/users/count", s.instance(s.usersCount))
	api("GET /v1/machines/{id}", s.instance(s.getMachine))
	api("GET /v1/machines/{id}/secret_key", s.instance(s.getMachineSecret))
	api("POST /v1/machines/{id}/secret_key/rotate", s.instance(s.rotate))
	api("GET /v1/m2m_tokens", s.m2mTokens)
	api("POST /v1/platform/applications/{applicationID}/instances/{envOrInsID}/rotate_secret_keys", s.platform(s.rotateInstance))
	api("POST /v1/platform/applications/{applicationID}/rotate_secret_keys", s.platform(s.rotateInstance))
	api("GET /v1/platform/applications/{applicationID}", s.platform(s.getApplication))
	api("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "resource_not_found", "not found")
	})
	mux.HandleFunc("POST /_admin/keys", s.adminAdd)
	mux.HandleFunc("DELETE /_admin/keys", s.adminDelete)
	mux.HandleFunc("POST /_admin/session_tokens", s.adminSessionToken)
	mux.HandleFunc("POST /_admin/clock", s.adminClock)
	mux.HandleFunc("GET /_admin/instance", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"environment": s.env, "publishable_key": s.PublishableKey(),
			"application_id": s.appID, "instance_id": s.InstanceID()})
	})
	return mux
}

func bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return v
}

// instance wraps h so that it runs only for a valid instance secret key.
func (s *Server) instance(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ok := s.activeKey(bearer(r)) != nil
		s.mu.Unlock()
		if !ok {
			writeKeyInvalid(w)
			return
		}
		h(w, r)
	}
}

func writeKeyInvalid(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, "clerk_key_invalid",
		"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{
			"code": code, "message": msg, "long_message": msg,
		}},
		"clerk_trace_id": w.Header().Get("Clerk-Trace-Id"),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// kid names the instance's signing key in the JWKS and in token headers.
func (s *Server) kid() string { return "ins_fake_" + s.env }

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &s.signer().PublicKey, KeyID: s.kid(), Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

// PublishableKey returns the instance's publishable key (pk_test_… or
// pk_live_…), which encodes its Frontend API host as Clerk's do. The
// Clerk SDKs need one to authenticate requests.
func (s *Server) PublishableKey() string {
	return "pk_" + s.env + "_" + base64.StdEncoding.EncodeToString([]byte(s.frontendAPI()+"$"))
}

func (s *Server) frontendAPI() string { return "clerk.emulator-" + s.env + ".rotor.test" }

// SessionToken returns a session token (a JWT signed with the instance's
// key, as Clerk issues them) for the user sub in session sid, valid from
// now, by the wall clock, for ttl.
func (s *Server) SessionToken(sub, sid string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"sub": sub, "sid": sid, "iss": "https://" + s.frontendAPI(),
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(ttl).Unix(),
		"v": 2,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.kid())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.signer()}, opts)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// user and emailAddress follow the User and EmailAddress objects of
// Clerk's Backend API reference (clerk/openapi-specs, bapi): the required
// arrays are present (empty where the fake has nothing), because the
// official SDKs map over them (@clerk/backend's User.fromJSON reads
// email_addresses[].linked_to, for one).
type user struct {
	Object                string         `json:"object"`
	ID                    string         `json:"id"`
	FirstName             string         `json:"first_name"`
	LastName              string         `json:"last_name"`
	Username              *string        `json:"username"`
	ImageURL              string         `json:"image_url"`
	HasImage              bool           `json:"has_image"`
	PrimaryEmailID        string         `json:"primary_email_address_id"`
	PrimaryPhoneNumberID  *string        `json:"primary_phone_number_id"`
	PrimaryWeb3WalletID   *string        `json:"primary_web3_wallet_id"`
	PasswordEnabled       bool           `json:"password_enabled"`
	TwoFactorEnabled      bool           `json:"two_factor_enabled"`
	TOTPEnabled           bool           `json:"totp_enabled"`
	BackupCodeEnabled     bool           `json:"backup_code_enabled"`
	Banned                bool           `json:"banned"`
	Locked                bool           `json:"locked"`
	EmailAddresses        []emailAddress `json:"email_addresses"`
	PhoneNumbers          []any          `json:"phone_numbers"`
	Web3Wallets           []any          `json:"web3_wallets"`
	Passkeys              []any          `json:"passkeys"`
	ExternalAccounts      []any          `json:"external_accounts"`
	SAMLAccounts          []any          `json:"saml_accounts"`
	EnterpriseAccounts    []any          `json:"enterprise_accounts"`
	PublicMetadata        map[string]any `json:"public_metadata"`
	PrivateMetadata       map[string]any `json:"private_metadata"`
	UnsafeMetadata        map[string]any `json:"unsafe_metadata"`
	ExternalID            *string        `json:"external_id"`
	LastSignInAt          *int64         `json:"last_sign_in_at"`
	LastActiveAt          *int64         `json:"last_active_at"`
	CreateOrganizationsOK bool           `json:"create_organization_enabled"`
	DeleteSelfEnabled     bool           `json:"delete_self_enabled"`
	CreatedAt             int64          `json:"created_at"`
	UpdatedAt             int64          `json:"updated_at"`
}

type emailAddress struct {
	Object       string       `json:"object"`
	ID           string       `json:"id"`
	EmailAddress string       `json:"email_address"`
	Reserved     bool         `json:"reserved"`
	Verification verification `json:"verification"`
	LinkedTo     []any        `json:"linked_to"`
	CreatedAt    int64        `json:"created_at"`
	UpdatedAt    int64        `json:"updated_at"`
}

type verification struct {
	Status   string `json:"status"`
	Strategy string `json:"strategy"`
	Attempts *int   `json:"attempts"`
	ExpireAt *int64 `json:"expire_at"`
}

func fakeUsers() []user {
	var us []user
	const at = 1717243200000
	for i, n := range [][2]string{{"Ada", "Lovelace"}, {"Grace", "Hopper"}, {"Alan", "Turing"}} {
		eid := fmt.Sprintf("idn_%d", i+1)
		us = append(us, user{
			Object: "user", ID: fmt.Sprintf("user_%d", i+1), FirstName: n[0], LastName: n[1],
			ImageURL:       "https://img.clerk.com/fake",
			PrimaryEmailID: eid,
			EmailAddresses: []emailAddress{{
				Object: "email_address", ID: eid, EmailAddress: strings.ToLower(n[0]) + "@example.com",
				Verification: verification{Status: "verified", Strategy: "email_code"},
				LinkedTo:     []any{}, CreatedAt: at, UpdatedAt: at,
			}},
			PhoneNumbers: []any{}, Web3Wallets: []any{}, Passkeys: []any{}, ExternalAccounts: []any{},
			SAMLAccounts: []any{}, EnterpriseAccounts: []any{},
			PublicMetadata: map[string]any{}, PrivateMetadata: map[string]any{}, UnsafeMetadata: map[string]any{},
			CreateOrganizationsOK: true, DeleteSelfEnabled: true,
			CreatedAt: at, UpdatedAt: at,
		})
	}
	return us
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	us := fakeUsers()
	if off, err := strconv.Atoi(r.URL.Query().Get("offset")); err == nil && off > 0 {
		us = us[min(off, len(us)):]
	}
	if lim, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && lim >= 0 {
		us = us[:min(lim, len(us))]
	}
	writeJSON(w, http.StatusOK, us)
}

func (s *Server) usersCount(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "total_count", "total_count": len(fakeUsers())})
}

func (s *Server) machine(w http.ResponseWriter, r *http.Request) *machine {
	m := s.machines[r.PathValue("id")]
	if m == nil {
		writeError(w, http.StatusNotFound, "resource_not_found", "machine not found")
	}
	return m
}

func (s *Server) getMachine(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machine(w, r); m != nil {
		writeJSON(w, http.StatusOK, map[string]any{
			"object": "machine", "id": m.id, "name": m.name, "instance_id": "ins_fake",
			"default_token_ttl": 3600, "scoped_machines": []any{},
			"created_at": s.now.UnixMilli(), "updated_at": s.now.UnixMilli(),
		})
	}
}

func (s *Server) getMachineSecret(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machine(w, r); m != nil {
		writeJSON(w, http.StatusOK, map[string]any{"object": "machine_secret_key", "secret": m.secret})
	}
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PreviousTokenTTL *int `json:"previous_token_ttl"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.PreviousTokenTTL == nil {
		writeError(w, http.StatusUnprocessableEntity, "form_param_missing", "previous_token_ttl must be included")
		return
	}
	ttl := *body.PreviousTokenTTL
	if ttl < 0 || ttl > MaxPreviousTokenTTL {
		writeError(w, http.StatusUnprocessableEntity, "form_param_value_invalid",
			"previous_token_ttl must be between 0 and 28800")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.machine(w, r)
	if m == nil {
		return
	}
	// Only one previous key is kept: rotating again ends the grace of the
	// key before it at once.
	m.previous, m.previousEnd = m.secret, s.now.Add(time.Duration(ttl)*time.Second)
	m.secret = machineSecret()
	m.rotations++
	m.lastTTL = ttl
	writeJSON(w, http.StatusOK, map[string]any{"object": "machine_secret_key", "secret": m.secret})
}

// machineByKey returns the machine a machine secret key belongs to, current
// or previous within its grace.
func (s *Server) machineByKey(key string) *machine {
	for _, m := range s.machines {
		if key == m.secret || key == m.previous && s.now.Before(m.previousEnd) {
			return m
		}
	}
	return nil
}

func (s *Server) m2mTokens(w http.ResponseWriter, r *http.Request) {
	key := bearer(r)
	subject := r.URL.Query().Get("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeKey(key) == nil {
		m := s.machineByKey(key)
		switch {
		case m == nil:
			writeError(w, http.StatusUnauthorized, "machine_secret_key_invalid", "The provided Machine Secret Key is invalid.")
			return
		case subject != "" && subject != m.id:
			writeError(w, http.StatusForbidden, "authorization_invalid", "A machine secret key can only list its own machine's tokens.")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"m2m_tokens": []any{}, "total_count": 0})
}

func (s *Server) adminAdd(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	id, v := s.AddNamedKey(body.Name)
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "name": s.KeyName(v), "secret": v})
}

func (s *Server) adminDelete(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "want {\"secret\":…} or {\"id\":…}")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, k := range s.keys {
		if !k.activeAt(s.now) {
			continue
		}
		if body.Secret != "" && v == body.Secret || body.ID != "" && k.id == body.ID {
			delete(s.keys, v)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "resource_not_found", "no such key")
}

func (s *Server) adminSessionToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Sub        string `json:"sub"`
		Sid        string `json:"sid"`
		TTLSeconds int    `json:"ttl_seconds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Sub == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "want {\"sub\":…, \"sid\":…, \"ttl_seconds\":…}")
		return
	}
	if body.Sid == "" {
		body.Sid = "sess_" + randomString(24)
	}
	ttl := time.Duration(body.TTLSeconds) * time.Second
	if ttl <= 0 {
		ttl = time.Minute
	}
	tok, err := s.SessionToken(body.Sub, body.Sid, ttl)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_clerk_error", "sign session token")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"jwt": tok})
}

// platform wraps h so that it runs only for the Platform API access token
// and an application the token can see.
func (s *Server) platform(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" || bearer(r) != s.token {
			writeError(w, http.StatusUnauthorized, "authentication_invalid",
				"The provided Platform API access token is invalid.")
			return
		}
		if r.PathValue("applicationID") != s.appID {
			writeError(w, http.StatusNotFound, "resource_not_found", "application not found")
			return
		}
		h(w, r)
	}
}

// rotateInstance serves PlatformRotateInstanceSecretKeys and, without an
// envOrInsID, PlatformRotateSecretKeys.
func (s *Server) rotateInstance(w http.ResponseWriter, r *http.Request) {
	if inst := r.PathValue("envOrInsID"); inst != "" && inst != s.environmentType() && inst != s.InstanceID() {
		writeError(w, http.StatusNotFound, "resource_not_found", "instance not found")
		return
	}
	var body struct {
		DelayHours *int   `json:"delay_old_secrets_expiration_hours"`
		Reason     string `json:"reason"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields() // additionalProperties: false
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "request_body_invalid", "the request body is not a valid rotate request")
		return
	}
	delay := 0
	if body.DelayHours != nil {
		delay = *body.DelayHours
	}
	if delay < 0 {
		writeError(w, http.StatusBadRequest, "form_param_value_invalid", "delay_old_secrets_expiration_hours must not be negative")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	deleteAt := s.now.Add(time.Duration(delay) * time.Hour)
	for _, k := range s.keys {
		if k.activeAt(s.now) && (k.deleteAt.IsZero() || deleteAt.Before(k.deleteAt)) {
			k.deleteAt = deleteAt
		}
	}
	id, value := s.addKeyLocked("")
	s.rotated = append(s.rotated, PlatformRotation{DelayHours: delay, Reason: body.Reason, NewKeyID: id})
	writeJSON(w, http.StatusOK, map[string]any{
		"application_id": s.appID, "name": "rotor emulator",
		"instances": []map[string]any{{
			"instance_id": s.InstanceID(), "environment_type": s.environmentType(), "secret_key": value,
		}},
	})
}

// getApplication serves PlatformGetApplication.
func (s *Server) getApplication(w http.ResponseWriter, r *http.Request) {
	inst := map[string]any{
		"instance_id": s.InstanceID(), "environment_type": s.environmentType(), "publishable_key": s.PublishableKey(),
	}
	if r.URL.Query().Get("include_secret_keys") == "true" {
		s.mu.Lock()
		var newest *instanceKey
		for _, k := range s.keys {
			if k.activeAt(s.now) && (newest == nil || k.seq > newest.seq) {
				newest = k
			}
		}
		s.mu.Unlock()
		if newest != nil {
			inst["secret_key"] = newest.value
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"application_id": s.appID, "name": "rotor emulator", "instances": []map[string]any{inst},
	})
}

func (s *Server) adminClock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AdvanceSeconds int64 `json:"advance_seconds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AdvanceSeconds < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "want {\"advance_seconds\": n} with n >= 0")
		return
	}
	s.Advance(time.Duration(body.AdvanceSeconds) * time.Second)
	writeJSON(w, http.StatusOK, map[string]string{"now": s.Now().Format(time.RFC3339)})
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func machineSecret() string { return "ak_" + randomString(40) }
