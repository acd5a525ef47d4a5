module github.com/rotor-dev/rotor/examples

go 1.26.0

require (
	github.com/clerk/clerk-sdk-go/v2 v2.4.2
	github.com/rotor-dev/rotor v0.0.0-00010101000000-000000000000
	github.com/rotor-dev/rotor/keyring v0.0.0-00010101000000-000000000000
)

require (
	github.com/go-jose/go-jose/v3 v3.0.4 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	golang.org/x/crypto v0.57.0 // indirect
)

// The examples are built and tested against this repository's working
// copy: the main module (for its Clerk emulator) and the SDK module it
// requires.
replace (
	github.com/rotor-dev/rotor => ../
	github.com/rotor-dev/rotor/keyring => ../keyring
)
