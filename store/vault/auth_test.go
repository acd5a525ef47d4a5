package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
)

// env is a fake environment for WithGetenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// enableAuth mounts an auth method of type kind at a unique path and
// returns the path.
func enableAuth(t *testing.T, kind string) string {
	t.Helper()
	mount := uniqueName(kind + "-")
	if err := srv.Client.Sys().EnableAuthWithOptionsWithContext(t.Context(), mount, &api.EnableAuthOptions{Type: kind}); err != nil {
		t.Fatalf("enable %s auth: %v", kind, err)
	}
	return mount
}

func rootWrite(t *testing.T, path string, body map[string]any) *api.Secret {
	t.Helper()
	res, err := srv.Client.Logical().WriteWithContext(t.Context(), path, body)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return res
}

// roundTrip proves st holds a working token: save then load a secret.
func roundTrip(t *testing.T, st *Store) {
	t.Helper()
	ctx := t.Context()
	sec := sampleSecret(uniqueName("auth-"))
	v, err := st.Save(ctx, sec, store.NoVersion)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, gotV, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if gotV != v || got.Current.ID != sec.Current.ID {
		t.Fatalf("Load = %s at %q, want %s at %q", got.Current.ID, gotV, sec.Current.ID, v)
	}
}

// ciPolicy returns a prefix and the name of a ci policy for it.
func ciPolicy(t *testing.T) (prefix, policy string) {
	prefix = uniqueName("rotortest/")
	return prefix, putPolicy(t, authz.RoleCI, prefix)
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	prefix, pol := ciPolicy(t)
	token := createToken(t, &api.TokenCreateRequest{Policies: []string{pol}, DisplayName: "deployer"})

	t.Run("file", func(t *testing.T) {
		cfg := tokenConfig(t, token)
		cfg.Prefix = prefix
		st := newStore(t, cfg)
		roundTrip(t, st)
		if st.identity != "vault:token-deployer" {
			t.Errorf("identity = %q, want the token's display name vault:token-deployer", st.identity)
		}
	})
	t.Run("environment", func(t *testing.T) {
		cfg := Options{Address: srv.Addr, Prefix: prefix}
		st := newStore(t, cfg, WithGetenv(env{"VAULT_TOKEN": token}.get))
		roundTrip(t, st)
	})
	t.Run("vault CLI token file", func(t *testing.T) {
		// `vault login` leaves the token in ~/.vault-token (the CLI's
		// default token helper); with no token_file or $VAULT_TOKEN,
		// rotor reads it as the CLI does.
		home := filepath.Dir(writeFile(t, ".vault-token", token+"\n"))
		cfg := Options{Address: srv.Addr, Prefix: prefix}
		st := newStore(t, cfg, WithGetenv(env{"HOME": home}.get))
		roundTrip(t, st)
	})
	t.Run("VAULT_TOKEN before the CLI token file", func(t *testing.T) {
		home := filepath.Dir(writeFile(t, ".vault-token", "hvs.stale-cli-token\n"))
		cfg := Options{Address: srv.Addr, Prefix: prefix}
		st := newStore(t, cfg, WithGetenv(env{"HOME": home, "VAULT_TOKEN": token}.get))
		roundTrip(t, st)
	})
	t.Run("token_file before the CLI token file", func(t *testing.T) {
		home := filepath.Dir(writeFile(t, ".vault-token", "hvs.stale-cli-token\n"))
		cfg := tokenConfig(t, token)
		cfg.Prefix = prefix
		st := newStore(t, cfg, WithGetenv(env{"HOME": home}.get))
		roundTrip(t, st)
	})
	t.Run("missing", func(t *testing.T) {
		cfg := Options{Address: srv.Addr, Prefix: prefix}
		for name, e := range map[string]env{"no home": {}, "empty home": {"HOME": t.TempDir()}} {
			_, err := New(t.Context(), cfg, WithGetenv(e.get))
			if err == nil || !strings.Contains(err.Error(), "VAULT_TOKEN") || !strings.Contains(err.Error(), ".vault-token") {
				t.Errorf("%s: New without a token: err = %v, want one naming VAULT_TOKEN and ~/.vault-token", name, err)
			}
		}
	})
	t.Run("rejected", func(t *testing.T) {
		bad := "hvs.not-a-real-token-" + uniqueName("")
		_, err := New(t.Context(), tokenConfig(t, bad))
		if err == nil {
			t.Fatal("New with an invalid token succeeded")
		}
		if StatusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), srv.Addr) {
			t.Errorf("err = %v, want a 403 naming the Vault address", err)
		}
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error contains the token: %v", err)
		}
	})
	t.Run("renewed", func(t *testing.T) {
		// Lives 2s unless renewed; the operator cannot hand out a new
		// one, so renewal is all that keeps a long-running rotor working.
		short := createToken(t, &api.TokenCreateRequest{Policies: []string{pol}, TTL: "2s", ExplicitMaxTTL: "1h"})
		cfg := tokenConfig(t, short)
		cfg.Prefix = prefix
		st := newStore(t, cfg)
		renewed := poll(t, 15*time.Second, func() bool {
			res, err := srv.Client.Auth().Token().LookupWithContext(t.Context(), short)
			return err == nil && res.Data["last_renewal_time"] != nil
		})
		if !renewed {
			t.Fatal("the token was not renewed within 15s")
		}
		roundTrip(t, st)
	})
	t.Run("close leaves the token alone", func(t *testing.T) {
		cfg := tokenConfig(t, token)
		st, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Client.Auth().Token().LookupWithContext(t.Context(), token); err != nil {
			t.Errorf("the operator's token was revoked by Close: %v", err)
		}
	})
}

func TestAppRoleAuth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	prefix, pol := ciPolicy(t)
	mount := enableAuth(t, "approle")
	rootWrite(t, "auth/"+mount+"/role/rotor", map[string]any{"token_policies": pol, "token_ttl": "10m"})
	roleID, err := srv.Client.Logical().ReadWithContext(ctx, "auth/"+mount+"/role/rotor/role-id")
	if err != nil {
		t.Fatal(err)
	}
	newSecretID := func() string {
		return rootWrite(t, "auth/"+mount+"/role/rotor/secret-id", nil).Data["secret_id"].(string)
	}
	cfg := func(secretIDFile string) Options {
		return Options{Address: srv.Addr, Prefix: prefix, Auth: AuthOptions{
			Method: AuthAppRole, Mount: mount,
			RoleID: roleID.Data["role_id"].(string), SecretIDFile: secretIDFile,
		}}
	}

	t.Run("secret id file", func(t *testing.T) {
		st := newStore(t, cfg(writeFile(t, "secret-id", newSecretID())))
		roundTrip(t, st)
		if want := "vault:" + mount; st.identity != want {
			t.Errorf("identity = %q, want %q", st.identity, want)
		}
	})
	t.Run("secret id environment", func(t *testing.T) {
		st := newStore(t, cfg(""), WithGetenv(env{"VAULT_SECRET_ID": newSecretID()}.get))
		roundTrip(t, st)
	})
	t.Run("wrong secret id", func(t *testing.T) {
		wrong := "00000000-0000-0000-0000-" + uniqueName("")[:12]
		_, err := New(ctx, cfg(writeFile(t, "secret-id", wrong)))
		if err == nil {
			t.Fatal("login with a wrong secret id succeeded")
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("error contains the secret id: %v", err)
		}
		if !strings.Contains(err.Error(), "approle") || StatusCode(err) == 0 {
			t.Errorf("err = %v, want Vault's refusal naming the auth method", err)
		}
	})
	t.Run("close revokes the token", func(t *testing.T) {
		st, err := New(ctx, cfg(writeFile(t, "secret-id", newSecretID())))
		if err != nil {
			t.Fatal(err)
		}
		token := st.client.Token()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Client.Auth().Token().LookupWithContext(ctx, token); err == nil {
			t.Error("the token rotor logged in with is still valid after Close")
		}
	})
}

// jwtSigner signs ES256 JWTs with a key generated for the test.
type jwtSigner struct{ key *ecdsa.PrivateKey }

func newJWTSigner(t *testing.T) *jwtSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{key: k}
}

func (j *jwtSigner) publicPEM(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&j.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (j *jwtSigner) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	h := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, j.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig)
}

// githubClaims are claims shaped like a GitHub Actions ID token's.
func githubClaims(aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":        "https://token.actions.githubusercontent.com",
		"sub":        "repo:rotor-dev/app:ref:refs/heads/main",
		"aud":        aud,
		"repository": "rotor-dev/app",
		"iat":        now.Unix(),
		"nbf":        now.Add(-time.Minute).Unix(),
		"exp":        now.Add(10 * time.Minute).Unix(),
	}
}

// setUpJWT mounts JWT auth that trusts signer's key and a role "ci" bound
// to audience aud and the repository, and returns the mount and prefix.
func setUpJWT(t *testing.T, signer *jwtSigner, aud string) (mount, prefix string) {
	t.Helper()
	prefix, pol := ciPolicy(t)
	mount = enableAuth(t, "jwt")
	rootWrite(t, "auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{signer.publicPEM(t)}})
	rootWrite(t, "auth/"+mount+"/role/ci", map[string]any{
		"role_type":       "jwt",
		"user_claim":      "sub",
		"bound_audiences": []string{aud},
		"bound_claims":    map[string]any{"repository": "rotor-dev/app"},
		"token_policies":  pol,
		"token_ttl":       "10m",
	})
	return mount, prefix
}

func TestJWTAuthFromFile(t *testing.T) {
	t.Parallel()
	signer := newJWTSigner(t)
	mount, prefix := setUpJWT(t, signer, "rotor-test")
	cfg := func(jwt string) Options {
		return Options{Address: srv.Addr, Prefix: prefix, Auth: AuthOptions{
			Method: AuthJWT, Mount: mount, Role: "ci", JWTFile: writeFile(t, "jwt", jwt),
		}}
	}
	t.Run("valid", func(t *testing.T) {
		st := newStore(t, cfg(signer.sign(t, githubClaims("rotor-test"))))
		roundTrip(t, st)
		if want := "vault:" + mount + "-repo:rotor-dev/app:ref:refs/heads/main"; st.identity != want {
			t.Errorf("identity = %q, want %q", st.identity, want)
		}
	})
	for name, jwt := range map[string]string{
		"foreign key":    newJWTSigner(t).sign(t, githubClaims("rotor-test")),
		"wrong audience": signer.sign(t, githubClaims("someone-else")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(t.Context(), cfg(jwt))
			if err == nil {
				t.Fatal("Vault accepted the JWT")
			}
			if strings.Contains(err.Error(), jwt) {
				t.Errorf("error contains the JWT: %v", err)
			}
		})
	}
}

// TestJWTAuthFromGitHubActions stands an httptest server in for the GitHub
// Actions ID-token endpoint and lets the real Vault verify the token it
// hands out.
func TestJWTAuthFromGitHubActions(t *testing.T) {
	t.Parallel()
	signer := newJWTSigner(t)
	mount, prefix := setUpJWT(t, signer, "https://vault.example.com")
	const requestToken = "actions-request-token"
	var calls atomic.Int32
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		switch {
		case r.Header.Get("Authorization") != "bearer "+requestToken:
			http.Error(w, "bad request token", http.StatusUnauthorized)
		case q.Get("api-version") != "2.0":
			http.Error(w, "the runner's query was dropped", http.StatusBadRequest)
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{"value": signer.sign(t, githubClaims(q.Get("audience")))})
		}
	}))
	t.Cleanup(gh.Close)
	cfg := Options{Address: srv.Addr, Prefix: prefix, Auth: AuthOptions{
		Method: AuthJWT, Mount: mount, Role: "ci", Audience: "https://vault.example.com",
	}}
	actions := env{
		"ACTIONS_ID_TOKEN_REQUEST_URL":   gh.URL + "/idtoken?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
	}

	t.Run("login", func(t *testing.T) {
		st := newStore(t, cfg, WithGetenv(actions.get))
		roundTrip(t, st)
		if n := calls.Load(); n != 1 {
			t.Errorf("ID token requested %d times, want 1", n)
		}
	})
	t.Run("audience is requested", func(t *testing.T) {
		// The fake issues tokens for whatever audience is asked for, so a
		// wrong audience must be refused by Vault's bound_audiences.
		wrong := cfg
		wrong.Auth.Audience = "https://other.example.com"
		if _, err := New(t.Context(), wrong, WithGetenv(actions.get)); err == nil {
			t.Fatal("Vault accepted a token for another audience: audience not passed through")
		}
	})
	t.Run("bad request token", func(t *testing.T) {
		bad := env{"ACTIONS_ID_TOKEN_REQUEST_URL": actions["ACTIONS_ID_TOKEN_REQUEST_URL"], "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "nope"}
		_, err := New(t.Context(), cfg, WithGetenv(bad.get))
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("err = %v, want the endpoint's 401", err)
		}
	})
	t.Run("not in GitHub Actions", func(t *testing.T) {
		_, err := New(t.Context(), cfg, WithGetenv(env{}.get))
		if err == nil || !strings.Contains(err.Error(), "id-token: write") {
			t.Fatalf("err = %v, want a hint about id-token permissions", err)
		}
	})
}

// TestKubernetesLoginRequest checks the login call rotor builds for
// Kubernetes auth: the role and the service-account token read from the
// file. It does not involve Vault or Kubernetes.
func TestKubernetesLoginRequest(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "token", "k8s-sa-jwt\n")
	a, err := newAuthenticator(AuthOptions{Method: AuthKubernetes, Role: "rotor", JWTFile: file}, env{}.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, body, err := a.loginRequest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if path != "auth/kubernetes/login" {
		t.Errorf("path = %q, want auth/kubernetes/login (default mount)", path)
	}
	if body["role"] != "rotor" || body["jwt"] != "k8s-sa-jwt" || len(body) != 2 {
		t.Errorf("body has keys %v with role %v; want exactly role=rotor and the trimmed file content as jwt", keys(body), body["role"])
	}

	d, err := newAuthenticator(AuthOptions{Method: AuthKubernetes, Role: "rotor"}, env{}.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.cfg.JWTFile != DefaultKubernetesJWTFile {
		t.Errorf("default jwt file = %q, want %q", d.cfg.JWTFile, DefaultKubernetesJWTFile)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestKubernetesAuthWithFakeTokenReview logs in through Vault's real
// Kubernetes auth method. No Kubernetes API server can run here, so an
// httptest server answers the one call Vault makes to it, the TokenReview;
// it approves only the exact service-account token rotor read from its
// file. What this proves: rotor's login request is accepted by Vault's
// kubernetes plugin end to end. What it does not: TokenReview semantics of
// a real cluster.
func TestKubernetesAuthWithFakeTokenReview(t *testing.T) {
	t.Parallel()
	signer := newJWTSigner(t)
	saJWT := signer.sign(t, map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:apps:rotor",
		"kubernetes.io/serviceaccount/namespace": "apps",
		"kubernetes.io/serviceaccount/service-account.name": "rotor",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-1",
	})
	reviews := make(chan string, 4)
	k8s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&review)
		select {
		case reviews <- r.URL.Path:
		default:
		}
		status := map[string]any{"authenticated": false}
		if r.Method == http.MethodPost && review.Spec.Token == saJWT {
			status = map[string]any{"authenticated": true, "user": map[string]any{
				"username": "system:serviceaccount:apps:rotor", "uid": "uid-1",
			}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status,
		})
	}))
	t.Cleanup(k8s.Close)

	prefix, pol := ciPolicy(t)
	mount := enableAuth(t, "kubernetes")
	rootWrite(t, "auth/"+mount+"/config", map[string]any{"kubernetes_host": k8s.URL, "disable_local_ca_jwt": true})
	rootWrite(t, "auth/"+mount+"/role/rotor", map[string]any{
		"bound_service_account_names":      "rotor",
		"bound_service_account_namespaces": "apps",
		"token_policies":                   pol,
		"token_ttl":                        "10m",
	})
	cfg := Options{Address: srv.Addr, Prefix: prefix, Auth: AuthOptions{
		Method: AuthKubernetes, Mount: mount, Role: "rotor", JWTFile: writeFile(t, "token", saJWT),
	}}
	st := newStore(t, cfg)
	roundTrip(t, st)
	select {
	case p := <-reviews:
		if p != "/apis/authentication.k8s.io/v1/tokenreviews" {
			t.Errorf("Vault called %s on the fake API server, want the TokenReview endpoint", p)
		}
	default:
		t.Error("Vault logged rotor in without a TokenReview: the fake was not consulted")
	}

	wrong := cfg
	wrong.Auth.JWTFile = writeFile(t, "other", signer.sign(t, map[string]any{
		"kubernetes.io/serviceaccount/namespace":            "apps",
		"kubernetes.io/serviceaccount/service-account.name": "rotor",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-1",
	}))
	if _, err := New(t.Context(), wrong); err == nil {
		t.Error("Vault accepted a token the fake TokenReview did not approve")
	}
}

// TestTokenRenewalAndRelogin gives rotor an AppRole token that lives 2s
// and at most 4s. The store must renew it before it expires and, once it
// reaches its maximum TTL, log in again and keep working.
func TestTokenRenewalAndRelogin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	prefix, pol := ciPolicy(t)
	mount := enableAuth(t, "approle")
	rootWrite(t, "auth/"+mount+"/role/short", map[string]any{"token_policies": pol, "token_ttl": "2s", "token_max_ttl": "4s"})
	roleID, err := srv.Client.Logical().ReadWithContext(ctx, "auth/"+mount+"/role/short/role-id")
	if err != nil {
		t.Fatal(err)
	}
	// The secret id has no use limit, so it serves both logins.
	secretIDFile := writeFile(t, "secret-id", rootWrite(t, "auth/"+mount+"/role/short/secret-id", nil).Data["secret_id"].(string))
	st := newStore(t, Options{Address: srv.Addr, Prefix: prefix, Auth: AuthOptions{
		Method: AuthAppRole, Mount: mount, RoleID: roleID.Data["role_id"].(string), SecretIDFile: secretIDFile,
	}})
	first := st.client.Token()

	renewed := poll(t, 15*time.Second, func() bool {
		res, err := srv.Client.Auth().Token().LookupWithContext(ctx, first)
		return err == nil && res.Data["last_renewal_time"] != nil
	})
	if !renewed {
		t.Fatal("the token was not renewed within 15s")
	}
	relogged := poll(t, 20*time.Second, func() bool { return st.client.Token() != first })
	if !relogged {
		t.Fatal("the store did not log in again within 20s of its token's maximum TTL")
	}
	roundTrip(t, st)
}

// poll calls ok every 100ms until it returns true or timeout passes; it
// reports whether ok returned true. This is readiness polling with a
// deadline, not synchronisation by sleep.
func poll(t *testing.T, timeout time.Duration, ok func() bool) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
