package config

import (
	"time"
)

// DefaultExecTimeout bounds one run of an exec provider's command.
const DefaultExecTimeout = 30 * time.Second

// ExecProvider configures a provider implemented by an external command
// speaking rotor's JSON protocol on stdin and stdout (see package
// provider/exec).
type ExecProvider struct {
	// Command is run without a shell. A program given as a relative path
	// with a directory (./bin/rotate) is resolved against the config file's
	// directory; a bare name is looked up in PATH.
	Command []string `yaml:"command"`
	// Timeout bounds one run; default 30s.
	Timeout Duration `yaml:"timeout"`
}

func (c *ExecProvider) validate(v *validator, p path) {
	if len(c.Command) == 0 || c.Command[0] == "" {
		v.addf(p.with("command"), "command is required")
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = Duration(DefaultExecTimeout)
	case c.Timeout < 0:
		v.addf(p.with("timeout"), "must not be negative")
	}
}

func (c *ExecProvider) resolvePaths(dir string) { resolveCommand(dir, c.Command) }
