package keyring

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvFile returns the contents of an env file holding vars ("NAME=value"
// strings, such as [EnvVars] returns), as `rotor run --mode signal` writes
// it: the line "# " followed by comment, then one NAME="value" line per
// variable in the order given, the value quoted by [strconv.Quote]. See
// "Environment variables" in the package documentation.
func EnvFile(comment string, vars []string) []byte {
	var b bytes.Buffer
	b.WriteString("# " + strings.ReplaceAll(comment, "\n", " ") + "\n")
	for _, v := range vars {
		name, value, _ := strings.Cut(v, "=")
		b.WriteString(name + "=" + strconv.Quote(value) + "\n")
	}
	return b.Bytes()
}

// ParseEnvFile returns the variables of an env file as [EnvFile] writes
// them. Blank lines and lines starting with "#" are skipped, and white
// space around a line is ignored; every other line must be NAME="value"
// with a Go double-quoted value. A variable that appears twice keeps its
// last value. Errors name the line, never its content.
func ParseEnvFile(data []byte) (map[string]string, error) {
	vars := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, quoted, _ := strings.Cut(line, "=")
		value, err := strconv.Unquote(quoted)
		if name == "" || strings.ContainsAny(name, " \t") || !strings.HasPrefix(quoted, `"`) || err != nil {
			return nil, fmt.Errorf("line %d: want NAME=\"value\"", i+1)
		}
		vars[name] = value
	}
	return vars, nil
}

// EnvFileSource reads a key set from the env file at path, which `rotor run
// --mode signal --env-file path` rewrites before every signal: each Load
// reads the file and takes the set from its variables exactly as
// [EnvSource] takes it from the environment. An application calls
// [Keyring.Refresh] when the signal arrives. The set has no Version.
func EnvFileSource(path, name string, opts ...SourceOption) Source {
	return &envFileSource{path: path, name: name, cfg: newSourceConfig(opts)}
}

type envFileSource struct {
	path, name string
	cfg        sourceConfig
}

func (s *envFileSource) Load(ctx context.Context) (Set, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return Set{}, fmt.Errorf("env file: %w", err)
	}
	vars, err := ParseEnvFile(data)
	if err != nil {
		return Set{}, fmt.Errorf("env file %s: %w", s.path, err)
	}
	src := envSource{name: s.name, getenv: func(k string) string { return vars[k] }, cfg: s.cfg}
	set, err := src.Load(ctx)
	if err != nil {
		return Set{}, fmt.Errorf("env file %s: %w", s.path, err)
	}
	return set, nil
}
