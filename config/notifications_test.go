package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/notify"
)

const notifyBase = `
secrets:
  - name: s
    provider: random
`

func TestNotifyBlock(t *testing.T) {
	c, err := Parse([]byte(notifyBase+`
notify:
  attempts: 3
  exit_wait: 5s
  targets:
    - name: ops
      type: slack
      url_env: SLACK_WEBHOOK_URL
      events: [rotation_failed, action_required]
    - type: webhook
      url: https://hooks.example.com/rotor
      signing_key_file: notify.key
`), "/etc/rotor")
	if err != nil {
		t.Fatal(err)
	}
	o := c.Notify
	if o.Attempts != 3 || o.ExitWait != 5*time.Second || o.Timeout != notify.DefaultTimeout {
		t.Errorf("options = %+v, want attempts and exit_wait as written, the rest defaulted", o)
	}
	if len(o.Targets) != 2 {
		t.Fatalf("targets = %+v", o.Targets)
	}
	if got := o.Targets[0]; got.Name != "ops" || got.URLEnv != "SLACK_WEBHOOK_URL" || !slices.Equal(got.Events, []string{"rotation_failed", "action_required"}) {
		t.Errorf("target 0 = %+v", got)
	}
	if got := o.Targets[1]; got.Name != "webhook-1" || got.SigningKeyFile != "/etc/rotor/notify.key" {
		t.Errorf("target 1 = %+v, want a default name and the key file resolved against the config's directory", got)
	}
	if env := c.ConsumedEnv(); !slices.Contains(env, "SLACK_WEBHOOK_URL") {
		t.Errorf("ConsumedEnv = %v: the webhook URL, a secret, would reach hooks and rotor run children", env)
	}
}

func TestNotifyBlockProblems(t *testing.T) {
	tests := []struct {
		name, block, want string
	}{
		{"unknown key", "notify:\n  targets:\n    - type: slack\n      url_env: U\n      channel: ops\n", "notify.targets[0].channel: field channel not found"},
		{"unknown event", "notify:\n  targets:\n    - type: webhook\n      url: https://h.example/x\n      events: [rotated, rotatd]\n", `notify.targets[0].events[1]: unknown event "rotatd"`},
		{"not a list", "notify:\n  targets:\n    type: slack\n", "notify.targets: want a list"},
		{"bad duration", "notify:\n  exit_wait: soon\n", "notify.exit_wait: invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(notifyBase+tt.block), "/")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
