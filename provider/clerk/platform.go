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
// (see the package documentation).
func (p *Provider) platformMint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	pl := p.platform
	token, err := p.platformToken()
	if err != nil {
		return provider.Credential{}, err
	}
	meta := map[string]string{}
	if req.Current != nil && req.Current.Value != "" {
		found, err := p.unknownInstanceKey(ctx, token, req)
		if err != nil {
			return provider.Credential{}, err
		}
		if found.SecretKey != "" {
			meta[MetaInstanceID] = found.InstanceID
			meta[MetaRecovered] = "true"
			return provider.Credential{Value: found.SecretKey, Meta: meta}, nil
		}
	}
	delay := delayHours(req.Grace)
	out, err := p.api.RotateInstanceSecretKeys(ctx, token, pl.ApplicationID, pl.Instance, clerkapi.RotateSecretKeysRequest{
		DelayHours: delay,
		Reason:     "rotor: rotation of secret " + req.Secret,
	})
	if err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: rotate the secret key of instance %s of application %s: %w", pl.Instance, pl.ApplicationID, p.describePlatform(err))
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
	meta[MetaInstanceID] = in.InstanceID
	meta[MetaDelayHours] = strconv.Itoa(delay)
	return provider.Credential{Value: in.SecretKey, Meta: meta}, nil
}

// unknownInstanceKey reads the instance's secret key from Clerk and
// returns it when it is neither req's current nor previous key: a key a
// rotate created whose answer rotor never saved. It returns a zero
// instance when Clerk's key is one rotor knows.
func (p *Provider) unknownInstanceKey(ctx context.Context, token string, req provider.MintRequest) (clerkapi.PlatformInstance, error) {
	pl := p.platform
	app, err := p.api.GetApplication(ctx, token, pl.ApplicationID, true)
	if err != nil {
		return clerkapi.PlatformInstance{}, fmt.Errorf("clerk: read the secret key of instance %s of application %s: %w", pl.Instance, pl.ApplicationID, p.describePlatform(err))
	}
	in, ok := app.Instance(pl.Instance)
	if !ok {
		return clerkapi.PlatformInstance{}, fmt.Errorf("clerk: application %s has no instance %s (clerk.platform.instance)", pl.ApplicationID, pl.Instance)
	}
	for _, known := range []string{req.Current.Value, keyValue(req.Previous)} {
		if in.SecretKey == "" || in.SecretKey == known {
			return clerkapi.PlatformInstance{}, nil
		}
	}
	return in, nil
}

// keyValue returns k's value, or "" for no key.
func keyValue(k *store.Key) string {
	if k == nil {
		return ""
	}
	return k.Value
}
