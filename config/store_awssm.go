package config

import (
	"regexp"
	"strings"
)

// DefaultAWSSMPrefix is the default name prefix of the secrets rotor
// manages in AWS Secrets Manager.
const DefaultAWSSMPrefix = "rotor/"

// AWSSMStore configures the AWS Secrets Manager store. Credentials always
// come from the AWS SDK's default chain (environment, shared files, SSO,
// web identity, container or instance role), never from this file.
type AWSSMStore struct {
	// Region overrides the region of the SDK's chain (AWS_REGION,
	// ~/.aws/config), e.g. eu-west-1.
	Region string `yaml:"region"`
	// Endpoint overrides the Secrets Manager endpoint, for LocalStack and
	// tests (http://localhost:4566). Plain http is accepted for loopback
	// addresses only: secret values travel in request bodies.
	Endpoint string `yaml:"endpoint"`
	// Prefix is prepended to every secret name; default "rotor/". A
	// secret NAME lives in <prefix>NAME, its rotor state in
	// <prefix>NAME/rotor-state.
	Prefix string `yaml:"prefix"`
	// KMSKeyID is the KMS key (id, ARN or alias) that encrypts the secrets
	// rotor creates; default the AWS managed key aws/secretsmanager.
	KMSKeyID string `yaml:"kms_key_id"`
}

var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// maxAWSSMPrefix leaves room in Secrets Manager's 512-character names for
// a 128-character secret name and the state suffix.
const maxAWSSMPrefix = 512 - 128 - len("/rotor-state")

func (c *AWSSMStore) validate(v *validator, p path) {
	if c.Region != "" && !awsRegion.MatchString(c.Region) {
		v.addf(p.with("region"), "invalid region %q (want e.g. us-east-1)", c.Region)
	}
	if c.Endpoint != "" {
		validateAWSEndpoint(v, p.with("endpoint"), &c.Endpoint)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultAWSSMPrefix
	}
	switch {
	case len(c.Prefix) > maxAWSSMPrefix:
		v.addf(p.with("prefix"), "prefix is %d characters long, at most %d", len(c.Prefix), maxAWSSMPrefix)
	case strings.Trim(c.Prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-") != "":
		v.addf(p.with("prefix"), "invalid prefix %q: Secrets Manager names allow only letters, digits and /_+=.@-", c.Prefix)
	}
	if strings.ContainsAny(c.KMSKeyID, " \t\n") {
		v.addf(p.with("kms_key_id"), "invalid KMS key %q: want a key id, key ARN or alias/NAME", c.KMSKeyID)
	}
}

func validateAWSEndpoint(v *validator, p path, s *string) {
	if msg := checkServiceURL(*s, "https://secretsmanager.us-east-1.amazonaws.com or http://localhost:4566", "secret values"); msg != "" {
		v.addf(p, "%s", msg)
		return
	}
	*s = strings.TrimRight(*s, "/")
}
