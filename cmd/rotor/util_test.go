package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// demoBlock is the demo secret's block in defaultConfig.
const demoBlock = `  - name: demo
    provider: random   # app-owned key: 32 random bytes
    random:
      bytes: 32
      encoding: base64url
`

// writeConfigWithout writes dir/rotor.yaml as `rotor init` does, with the
// demo secret's block replaced by secrets (YAML list items, indented as
// in defaultConfig).
func writeConfigWithout(t *testing.T, dir, secrets string) {
	t.Helper()
	cfg := strings.Replace(defaultConfig, demoBlock, secrets, 1)
	if cfg == defaultConfig {
		t.Fatal("defaultConfig has no demo block to replace")
	}
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}
