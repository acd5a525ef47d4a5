package keyid

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	salt := []byte("deployment-salt")
	id := Of(salt, "sk_test_value")
	if len(id) != Len {
		t.Fatalf("len(id) = %d, want %d", len(id), Len)
	}
	if strings.Contains(id, "value") {
		t.Fatalf("id %q leaks the value", id)
	}
	if Of(salt, "sk_test_value") != id {
		t.Fatal("key id is not deterministic")
	}
	if Of([]byte("other-salt"), "sk_test_value") == id {
		t.Fatal("key id does not depend on the salt")
	}
	if Of(salt, "sk_test_other") == id {
		t.Fatal("different values share a key id")
	}
}
