module github.com/rotor-dev/rotor/keyring

go 1.25.0
