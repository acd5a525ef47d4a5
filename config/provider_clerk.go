package config

// ClerkProvider configures a Clerk instance secret key.
type ClerkProvider struct {
	APIURL string `yaml:"api_url"` // default https://api.clerk.com
}

// ClerkMachineProvider configures a Clerk machine (M2M) secret key.
type ClerkMachineProvider struct {
	APIURL    string `yaml:"api_url"`
	MachineID string `yaml:"machine_id"`
}

func (c *ClerkProvider) validate(v *validator, p path) {
	if c.APIURL == "" {
		c.APIURL = "https://api.clerk.com"
	}
}

func (c *ClerkMachineProvider) validate(v *validator, p path) {
	if c.APIURL == "" {
		c.APIURL = "https://api.clerk.com"
	}
	if c.MachineID == "" {
		v.addf(p.with("machine_id"), "machine_id is required")
	}
}
