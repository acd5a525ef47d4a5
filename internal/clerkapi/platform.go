package clerkapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// The Platform API calls below follow Clerk's published OpenAPI document
// for it (clerk/openapi-specs, platform/beta.yml; operation ids in each
// doc comment). They are authenticated by a workspace's Platform API access
// token, not by an instance secret key, and share the Backend API's base
// URL and error format.

// PlatformInstance is one instance of a Platform API application answer
// (PlatformApplicationInstance, PlatformRotateSecretKeysInstance).
type PlatformInstance struct {
	InstanceID string `json:"instance_id"`
	// EnvironmentType is "development" or "production".
	EnvironmentType string `json:"environment_type"`
	// SecretKey is the instance's secret key: the new one in a rotate
	// answer; in an application answer only when secret keys were asked
	// for. It never appears in an error.
	SecretKey      string `json:"secret_key"`
	PublishableKey string `json:"publishable_key"`
}

// PlatformApplication is a Platform API application answer
// (PlatformApplicationResponse, PlatformRotateSecretKeysResponse).
type PlatformApplication struct {
	ApplicationID string             `json:"application_id"`
	Name          string             `json:"name"`
	Instances     []PlatformInstance `json:"instances"`
}

// Instance returns the application's instance named by envOrInsID (an
// environment type or an instance id), or false.
func (a *PlatformApplication) Instance(envOrInsID string) (PlatformInstance, bool) {
	for _, in := range a.Instances {
		if in.InstanceID == envOrInsID || in.EnvironmentType == envOrInsID {
			return in, true
		}
	}
	return PlatformInstance{}, false
}

// RotateSecretKeysRequest is the body of a rotate call
// (PlatformRotateSecretKeysRequest).
type RotateSecretKeysRequest struct {
	// DelayHours is delay_old_secrets_expiration_hours: how long Clerk
	// keeps the old secret keys valid beside the new one.
	DelayHours int `json:"delay_old_secrets_expiration_hours"`
	// Reason is kept by Clerk for audit.
	Reason string `json:"reason,omitempty"`
}

// RotateInstanceSecretKeys creates a new secret key for one instance of an
// application and schedules the old ones for deletion after
// req.DelayHours (PlatformRotateInstanceSecretKeys: POST
// /v1/platform/applications/{applicationID}/instances/{envOrInsID}/rotate_secret_keys).
// The new key is in the answer only. The call is not idempotent, so it is
// retried only when Clerk cannot have acted on it (see the package doc):
// after any other failure Clerk may hold a new key that only a later
// [Client.GetApplication] can reveal.
func (c *Client) RotateInstanceSecretKeys(ctx context.Context, token, applicationID, envOrInsID string, req RotateSecretKeysRequest) (PlatformApplication, error) {
	var out PlatformApplication
	path := "/platform/applications/" + url.PathEscape(applicationID) + "/instances/" + url.PathEscape(envOrInsID) + "/rotate_secret_keys"
	err := c.Do(ctx, Call{Method: http.MethodPost, Path: path, Key: token, Body: req}, &out)
	return out, err
}

// GetApplication reads an application and its instances
// (PlatformGetApplication: GET /v1/platform/applications/{applicationID}),
// with each instance's secret key when secretKeys is true
// (include_secret_keys=true). It only reads, so it is retried.
func (c *Client) GetApplication(ctx context.Context, token, applicationID string, secretKeys bool) (PlatformApplication, error) {
	var out PlatformApplication
	q := url.Values{}
	if secretKeys {
		q.Set("include_secret_keys", "true")
	}
	path := "/platform/applications/" + url.PathEscape(applicationID)
	if err := c.Do(ctx, Call{Method: http.MethodGet, Path: path, Query: q, Key: token, Idempotent: true}, &out); err != nil {
		return PlatformApplication{}, err
	}
	if out.ApplicationID != "" && out.ApplicationID != applicationID {
		return PlatformApplication{}, fmt.Errorf("clerk api: GET /v1%s: answered application %q", path, out.ApplicationID)
	}
	return out, nil
}
