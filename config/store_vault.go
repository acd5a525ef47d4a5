package config

// VaultStore configures the HashiCorp Vault KV v2 store.
type VaultStore struct {
	Address string `yaml:"address"` // default $VAULT_ADDR
	Mount   string `yaml:"mount"`   // KV v2 mount, default "secret"
	Prefix  string `yaml:"prefix"`  // path prefix under the mount, default "rotor"
}

func (c *VaultStore) validate(v *validator, p path) {
	if c.Mount == "" {
		c.Mount = "secret"
	}
	if c.Prefix == "" {
		c.Prefix = "rotor"
	}
}
