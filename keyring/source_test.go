package keyring

import "testing"

func TestStaticSourceCopies(t *testing.T) {
	sec := newSecrets(t)
	set := Set{Current: sec.key(), Previous: ptr(sec.key())}
	src := StaticSource(set)
	set.Previous.Value = "changed"
	got, _ := src.Load(t.Context())
	got.Previous.ID = "changed too"
	again, _ := src.Load(t.Context())
	if again.Previous.Value == "changed" || again.Previous.ID == "changed too" {
		t.Errorf("StaticSource shares its set with callers")
	}
}
