package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServesGivenKeys: the command prints its URL once it accepts
// connections, and the instance accepts the keys it was given and rejects
// others with Clerk's 401.
func TestServesGivenKeys(t *testing.T) {
	key := "sk_test_emulator_cmd_0123456789"
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--key", key}, noEnv, pw, io.Discard) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(line)
	for _, c := range []struct {
		key  string
		want int
	}{{key, 200}, {"sk_test_unknown", 401}} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/jwks", nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("jwks answered %d, want %d", resp.StatusCode, c.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestUsage: bad flags are usage errors, and a malformed key is refused
// without being echoed.
func TestUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"not loopback": {"--listen", "0.0.0.0:0"},
		"bad key":      {"--key", "not-a-clerk-key-SECRETVALUE"},
		"extra args":   {"serve"},
		"bad app id":   {"--application-id", "ins_x"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr strings.Builder
			err := run(t.Context(), args, noEnv, io.Discard, &stderr)
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if strings.Contains(err.Error()+stderr.String(), "SECRETVALUE") {
				t.Fatal("the key was echoed")
			}
		})
	}
}

func noEnv(string) string { return "" }

// TestPlatformTokenFromEnvironment: the Platform API accepts the token of
// the variable --platform-token-env names (as rotor reads its own), and
// refuses every call when it is unset.
func TestPlatformTokenFromEnvironment(t *testing.T) {
	const token = "emulator-platform-token-0123456789"
	for name, env := range map[string]func(string) string{
		"set":   func(k string) string { return map[string]string{"MY_TOKEN": token}[k] },
		"unset": noEnv,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			pr, pw := io.Pipe()
			var stderr strings.Builder
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"--platform-token-env", "MY_TOKEN", "--application-id", "app_walkthrough"}, env, pw, &stderr)
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(t.Context(), "GET", strings.TrimSpace(line)+"/v1/platform/applications/app_walkthrough", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]int{"set": 200, "unset": 401}[name]
			if resp.StatusCode != want {
				t.Errorf("PlatformGetApplication answered %d, want %d", resp.StatusCode, want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if strings.Contains(stderr.String(), token) {
				t.Fatal("the token was printed")
			}
		})
	}
}
