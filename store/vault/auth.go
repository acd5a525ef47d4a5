package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Environment variables rotor reads for credentials.
const (
	envToken           = "VAULT_TOKEN"
	envSecretID        = "VAULT_SECRET_ID"
	envActionsTokenURL = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envActionsToken    = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// cliTokenFile is where, under the home directory, the Vault CLI's default
// token helper keeps the token of `vault login`.
const cliTokenFile = ".vault-token"

// authenticator obtains a Vault token with one auth method. login can be
// called again to replace a token that reached its maximum TTL; it rereads
// credential files each time, since Kubernetes and secret-id files rotate.
type authenticator struct {
	method string
	cfg    AuthOptions
	getenv func(string) string
	http   *http.Client
}

// newAuthenticator returns the authenticator for cfg, with its defaults.
func newAuthenticator(cfg AuthOptions, getenv func(string) string, hc *http.Client) (*authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vault auth: %w", err)
	}
	cfg = cfg.WithDefaults()
	return &authenticator{method: cfg.Method, cfg: cfg, getenv: getenv, http: hc}, nil
}

// login authenticates client: it sets the client's token and returns the
// token's auth information for renewal.
func (a *authenticator) login(ctx context.Context, client *api.Client) (*api.Secret, error) {
	if a.method == AuthToken {
		return a.useToken(ctx, client)
	}
	path, body, err := a.loginRequest(ctx)
	if err != nil {
		return nil, err
	}
	// Log in on a copy without a token: the client's own token may be the
	// expired one being replaced.
	lc, err := client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("clone vault client: %w", err)
	}
	lc.ClearToken()
	res, err := lc.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, authFailure(client.Address(), path, "login refused", err)
	}
	if res == nil || res.Auth == nil || res.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%s returned no token", path)
	}
	client.SetToken(res.Auth.ClientToken)
	return res, nil
}

// loginRequest builds the path and body of the login call for the
// configured method.
func (a *authenticator) loginRequest(ctx context.Context) (string, map[string]any, error) {
	path := "auth/" + a.cfg.Mount + "/login"
	switch a.method {
	case AuthAppRole:
		secretID, err := a.secretFromFileOrEnv("secret id", a.cfg.SecretIDFile, envSecretID)
		if err != nil {
			return "", nil, err
		}
		return path, map[string]any{"role_id": a.cfg.RoleID, "secret_id": secretID}, nil
	case AuthJWT:
		var jwt string
		var err error
		if a.cfg.JWTFile != "" {
			jwt, err = readCredential("jwt", a.cfg.JWTFile)
		} else {
			jwt, err = a.githubIDToken(ctx)
		}
		if err != nil {
			return "", nil, err
		}
		return path, map[string]any{"role": a.cfg.Role, "jwt": jwt}, nil
	case AuthKubernetes:
		jwt, err := readCredential("service-account token", a.cfg.JWTFile)
		if err != nil {
			return "", nil, err
		}
		return path, map[string]any{"role": a.cfg.Role, "jwt": jwt}, nil
	}
	return "", nil, fmt.Errorf("auth method %s has no login call", a.method)
}

// useToken sets the configured token and looks it up, which checks it
// early and tells whether and how it can be renewed.
func (a *authenticator) useToken(ctx context.Context, client *api.Client) (*api.Secret, error) {
	token, err := a.token()
	if err != nil {
		return nil, err
	}
	client.SetToken(token)
	res, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, authFailure(client.Address(), "auth/token/lookup-self", "token rejected (invalid, expired, or without the default policy to look itself up)", err)
	}
	if res == nil {
		return nil, errors.New("token lookup returned nothing")
	}
	renewable, _ := res.TokenIsRenewable()
	ttl, _ := res.TokenTTL()
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   token,
		Renewable:     renewable,
		LeaseDuration: int(ttl / time.Second),
	}}, nil
}

// githubIDToken requests a GitHub Actions OIDC ID token for the configured
// audience. The job needs `permissions: id-token: write`, which makes the
// runner set the two ACTIONS_ID_TOKEN_REQUEST_* variables.
func (a *authenticator) githubIDToken(ctx context.Context) (string, error) {
	rawURL, bearer := a.getenv(envActionsTokenURL), a.getenv(envActionsToken)
	if rawURL == "" || bearer == "" {
		return "", fmt.Errorf("no jwt_file configured and %s/%s are not set: outside GitHub Actions set auth.jwt_file; inside, grant the job `permissions: id-token: write`", envActionsTokenURL, envActionsToken)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", envActionsTokenURL, err)
	}
	if a.cfg.Audience != "" {
		q := u.Query()
		q.Set("audience", a.cfg.Audience)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("github actions id token request: %w", err)
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no credential.
		return "", fmt.Errorf("github actions id token request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("github actions id token request to %s: HTTP %d", u.Host, resp.StatusCode)
	}
	var body struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("github actions id token response from %s: not JSON", u.Host)
	}
	if body.Value == "" {
		return "", fmt.Errorf("github actions id token response from %s has no value", u.Host)
	}
	return body.Value, nil
}

// secretFromFileOrEnv reads a credential from file, or else from the
// environment variable env.
func (a *authenticator) secretFromFileOrEnv(what, file, env string) (string, error) {
	if file != "" {
		return readCredential(what, file)
	}
	if v := strings.TrimSpace(a.getenv(env)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("no vault %s: set %s or configure a file for it", what, env)
}

// token returns the token for the token method: from TokenFile, else
// $VAULT_TOKEN, else the file the Vault CLI's default token helper keeps,
// ~/.vault-token (home from $HOME, else $USERPROFILE, as the CLI finds it).
func (a *authenticator) token() (string, error) {
	if a.cfg.TokenFile != "" || strings.TrimSpace(a.getenv(envToken)) != "" {
		return a.secretFromFileOrEnv("token", a.cfg.TokenFile, envToken)
	}
	home := a.getenv("HOME")
	if home == "" {
		home = a.getenv("USERPROFILE")
	}
	if home != "" {
		b, err := os.ReadFile(filepath.Join(home, cliTokenFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read vault token: %w", err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("no vault token: set %s, configure token_file, or log in with the vault CLI (~/%s)", envToken, cliTokenFile)
}

func readCredential(what, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read vault %s: %w", what, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("read vault %s: %s is empty", what, file)
	}
	return v, nil
}

// loginError describes a failed login call on one line.
func loginError(path string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return &responseError{re: re}
	}
	return fmt.Errorf("%s: %w", path, err)
}

// keepAlive renews the store's token until ctx ends. When the token can be
// renewed no further (maximum TTL, or revoked), it logs in again with a,
// retrying with backoff; a plain token cannot be replaced, so that is
// logged and renewal ends.
func (s *Store) keepAlive(ctx context.Context, a *authenticator, secret *api.Secret) {
	defer close(s.done)
	for {
		if secret == nil || secret.Auth == nil || secret.Auth.LeaseDuration == 0 {
			return // a token without TTL (root, or no expiry) needs no care
		}
		err := s.watch(ctx, secret)
		if ctx.Err() != nil {
			return
		}
		if a.method == AuthToken {
			s.log.Error("vault token can no longer be renewed; it will expire", "vault", s.addr, "err", err)
			return
		}
		s.log.Info("vault token reached the end of its life; logging in again", "vault", s.addr, "method", a.method, "err", err)
		if secret = s.relogin(ctx, a); secret == nil {
			return
		}
	}
}

// watch runs a LifetimeWatcher on secret until it is done or ctx ends.
func (s *Store) watch(ctx context.Context, secret *api.Secret) error {
	w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return err
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-w.DoneCh():
			return err
		case r := <-w.RenewCh():
			ttl := 0
			if r.Secret != nil && r.Secret.Auth != nil {
				ttl = r.Secret.Auth.LeaseDuration
			}
			s.log.Debug("renewed vault token", "vault", s.addr, "ttl_seconds", ttl)
		}
	}
}

// relogin logs in until it succeeds or ctx ends (then it returns nil).
func (s *Store) relogin(ctx context.Context, a *authenticator) *api.Secret {
	backoff := time.Second
	for {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		secret, err := a.login(lctx, s.client)
		cancel()
		if err == nil {
			s.log.Info("logged in to vault again", "vault", s.addr, "method", a.method)
			return secret
		}
		s.log.Error("vault login failed; retrying", "vault", s.addr, "method", a.method, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, time.Minute)
	}
}
