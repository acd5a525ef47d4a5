package clerk

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkapi"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// delayHours converts a grace period to delay_old_secrets_expiration_hours:
// rounded up, so the old key stays valid at least as long as asked.
func delayHours(grace time.Duration) int {
	if grace <= 0 {
		return 0
	}
	return int((grace + time.Hour - 1) / time.Hour)
}

// platformToken reads the Platform API access token from the environment.
func (p *Provider) platformToken() (string, error) {
	v, ok := p.lookupEnv(p.platform.TokenEnv)
	if !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("clerk: environment variable %s (clerk.platform.token_env) is not set; platform mode needs a Clerk Platform API access token to rotate %s", p.platform.TokenEnv, p.secret)
	}
	return strings.TrimSpace(v), nil
}

// describePlatform explains a failed Platform API call in the terms of the
// config.
func (p *Provider) describePlatform(err error) error {
	pl := p.platform
	switch clerkapi.StatusOf(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w; Clerk rejected the Platform API access token in %s (clerk.platform.token_env): is it a workspace's Platform API token, not an instance secret key, and still valid?", err, pl.TokenEnv)
	case http.StatusForbidden:
		return fmt.Errorf("%w; the Platform API access token in %s (clerk.platform.token_env) may not manage application %s", err, pl.TokenEnv, pl.ApplicationID)
	case http.StatusNotFound:
		return fmt.Errorf("%w; check clerk.platform.application_id (%s) and clerk.platform.instance (%s)", err, pl.ApplicationID, pl.Instance)
	}
	return err
}

// platformMint rotates the instance's secret key through the Platform API
// (see the package documentation). An error wrapping
// [provider.ErrNotMinted] means Clerk cannot have acted on the call; after
// any other, [Provider.Recover] finds out.
func (p *Provider) platformMint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	pl := p.platform
	token, err := p.platformToken()
	if err != nil {
		return provider.Credential{}, fmt.Errorf("%w: %w", err, provider.ErrNotMinted)
	}
	delay := delayHours(req.Grace)
	reason := "rotor: rotation of secret " + req.Secret
	if req.RequestID != "" {
		reason += ", request " + req.RequestID
	}
	if req.Initiator != "" {
		reason += ", initiated by " + req.Initiator
	}
	out, err := p.api.RotateInstanceSecretKeys(ctx, token, pl.ApplicationID, pl.Instance, clerkapi.RotateSecretKeysRequest{
		DelayHours: delay,
		Reason:     reason,
	})
	if err != nil {
		err = fmt.Errorf("clerk: rotate the secret key of instance %s of application %s: %w", pl.Instance, pl.ApplicationID, p.describePlatform(err))
		if clerkapi.NotActedOn(err) {
			return provider.Credential{}, fmt.Errorf("%w: %w", err, provider.ErrNotMinted)
		}
		return provider.Credential{}, fmt.Errorf("%w (Clerk may have rotated; the next run asks it)", err)
	}
	in, ok := out.Instance(pl.Instance)
	if !ok && len(out.Instances) == 1 {
		in, ok = out.Instances[0], true
	}
	if !ok || in.SecretKey == "" {
		return provider.Credential{}, fmt.Errorf("clerk: rotate the secret key of instance %s of application %s: the answer holds no new key for that instance; the old keys are deleted in %dh", pl.Instance, pl.ApplicationID, delay)
	}
	if _, err := p.checkKey(in.SecretKey); err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: rotate the secret key of instance %s: the new key: %w", pl.Instance, err)
	}
	return provider.Credential{Value: in.SecretKey, Meta: map[string]string{
		MetaInstanceID:              in.InstanceID,
		MetaDelayHours:              strconv.Itoa(delay),
		provider.MetaReplacedKeyTTL: strconv.Itoa(delay * 3600),
	}}, nil
}

// PlatformProvider is a platform-mode [Provider] as the rotation engine
// sees it: the same, plus [PlatformProvider.Recover]. Manual mode has no
// Recover, so that the engine reports a key a mint hook may have created
// in an interrupted run as possibly orphaned instead of forgetting it.
type PlatformProvider struct{ *Provider }

var (
	_ provider.Recoverer      = PlatformProvider{}
	_ provider.PromoteChecker = PlatformProvider{}
)

// ForEngine returns p as the rotation engine should hold it: a
// [PlatformProvider] in platform mode, p itself in manual mode.
func (p *Provider) ForEngine() provider.Provider {
	if p.platform != nil {
		return PlatformProvider{p}
	}
	return p
}

// NewForEngine is [New] followed by [Provider.ForEngine], for the tables
// that build providers by name.
func NewForEngine(secret string, cfg Options, opts ...Option) (provider.Provider, error) {
	p, err := New(secret, cfg, opts...)
	if err != nil {
		return nil, err
	}
	return p.ForEngine(), nil
}

// Recover returns the key a rotate call created whose answer rotor never
// saved (meta recovered=true): the instance's secret key as Clerk holds it
// now (PlatformGetApplication with include_secret_keys=true), when it is
// neither req's current nor its previous key. When it is one of them, the
// rotate never took effect and Recover answers [provider.ErrNotMinted].
// On first issue (no current key) the instance's key is returned whatever
// it is: it works, and a key a lost rotate replaced is deleted by Clerk on
// its own. Recover only reads.
func (pp PlatformProvider) Recover(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	p := pp.Provider
	pl := p.platform
	token, err := p.platformToken()
	if err != nil {
		return provider.Credential{}, err
	}
	app, err := p.api.GetApplication(ctx, token, pl.ApplicationID, true)
	if err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: recover request %s: read the secret key of instance %s of application %s: %w", req.RequestID, pl.Instance, pl.ApplicationID, p.describePlatform(err))
	}
	in, ok := app.Instance(pl.Instance)
	switch {
	case !ok:
		return provider.Credential{}, fmt.Errorf("clerk: recover request %s: application %s has no instance %s (clerk.platform.instance)", req.RequestID, pl.ApplicationID, pl.Instance)
	case in.SecretKey == "":
		return provider.Credential{}, fmt.Errorf("clerk: recover request %s: Clerk answered no secret key for instance %s", req.RequestID, pl.Instance)
	case in.SecretKey == keyValue(req.Current) || in.SecretKey == keyValue(req.Previous):
		return provider.Credential{}, fmt.Errorf("clerk: instance %s still has a key rotor knows: %w", pl.Instance, provider.ErrNotMinted)
	}
	if _, err := p.checkKey(in.SecretKey); err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: recover request %s: the instance's key: %w", req.RequestID, err)
	}
	// The lost call asked for the delay this request asks for.
	delay := delayHours(req.Grace)
	return provider.Credential{Value: in.SecretKey, Meta: map[string]string{
		MetaInstanceID:              in.InstanceID,
		MetaRecovered:               "true",
		MetaDelayHours:              strconv.Itoa(delay),
		provider.MetaReplacedKeyTTL: strconv.Itoa(delay * 3600),
	}}, nil
}

// keyValue returns k's value, or "" for no key.
func keyValue(k *store.Key) string {
	if k == nil {
		return ""
	}
	return k.Value
}
