package config_test

import (
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/config"
)

func TestConsumerTimeoutWarning(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		block, want string // want: a part of the warning, "" for none
	}{
		"too short for the SDK's 30s poll": {
			block: "    consumers: [http://10.0.0.5:8080/healthz]\n    consumer_timeout: 30s\n",
			want:  "s: consumer_timeout 30s cannot cover the keyring SDK's default refresh interval of 30s plus a 10s margin",
		},
		"covers it": {
			block: "    consumers: [http://10.0.0.5:8080/healthz]\n    consumer_timeout: 40s\n",
		},
		"default timeout (2m)": {
			block: "    consumers: [http://10.0.0.5:8080/healthz]\n",
		},
		"no consumers": {
			block: "    consumer_timeout: 5s\n",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := config.Parse([]byte("secrets:\n  - name: s\n    provider: random\n"+tt.block), "/etc/rotor")
			if err != nil {
				t.Fatal(err)
			}
			ws := strings.Join(c.Warnings(), "\n")
			if tt.want == "" && ws != "" || !strings.Contains(ws, tt.want) {
				t.Errorf("warnings = %q, want %q", ws, tt.want)
			}
		})
	}
}
