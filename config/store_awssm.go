package config

// AWSSMStore configures the AWS Secrets Manager store.
type AWSSMStore struct {
	Region   string `yaml:"region"`   // default from the SDK's chain
	Endpoint string `yaml:"endpoint"` // override, for LocalStack and tests
	Prefix   string `yaml:"prefix"`   // secret name prefix, default "rotor/"
}

func (c *AWSSMStore) validate(v *validator, p path) {
	if c.Prefix == "" {
		c.Prefix = "rotor/"
	}
}
