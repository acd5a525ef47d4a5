package config

// ExecProvider configures a provider implemented by an external command.
type ExecProvider struct {
	Command []string `yaml:"command"`
	Timeout Duration `yaml:"timeout"`
}

func (c *ExecProvider) validate(v *validator, p path) {
	if len(c.Command) == 0 {
		v.addf(p.with("command"), "command is required")
	}
}

func (c *ExecProvider) resolvePaths(dir string) {}
