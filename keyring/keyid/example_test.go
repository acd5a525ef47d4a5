package keyid_test

import (
	"fmt"

	"github.com/rotor-dev/rotor/keyring/keyid"
)

// A known answer for implementations in other languages:
// HMAC-SHA256 keyed with the salt, over the value, lowercase hex, first 16
// characters.
func ExampleOf() {
	fmt.Println(keyid.Of([]byte("deployment salt"), "sk_test_example"))
	// Output: d23559fc74a6c735
}
