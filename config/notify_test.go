package config_test

import (
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/config"
)

func TestNotifyConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		block, wantErr string
	}{
		"https":                 {block: "urls: [https://rotor.internal:8700]"},
		"http to loopback":      {block: "urls: [http://127.0.0.1:8700, http://localhost:8700]"},
		"http elsewhere":        {block: "urls: [http://rotor.internal:8700]", wantErr: "plain http is only allowed to a loopback address"},
		"not a URL":             {block: "urls: [rotor.internal]", wantErr: "invalid URL"},
		"credentials in URL":    {block: "urls: [https://u:p@rotor.internal]", wantErr: "without credentials"},
		"bad token variable":    {block: "urls: [https://r]\n    token_env: not-a-var", wantErr: "is not an environment variable name"},
		"defaults need no urls": {block: "timeout: 2s"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := config.Parse([]byte("secrets:\n  - {name: s, provider: random}\nserver:\n  notify:\n    "+tt.block+"\n"), "/etc/rotor")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Server.Notify.TokenEnv != config.DefaultNotifyTokenEnv {
					t.Errorf("token_env = %q, want the default", c.Server.Notify.TokenEnv)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "server.notify.") {
				t.Fatalf("err = %v, want %q at server.notify", err, tt.wantErr)
			}
		})
	}
}
