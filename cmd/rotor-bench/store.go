package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/internal/dynamofake"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/internal/zerodowntime"
)

// Stores zero-downtime's push modes can run on.
const (
	storeFile  = "file"
	storeVault = "vault"
	storeAWS   = "aws"
)

// pushStores is the stores zero-downtime takes with -store.
var pushStores = []string{storeFile, storeVault, storeAWS}

// benchStore runs the store of zero-downtime's push modes: nothing for
// the file store (rotor's default, in each run's directory), one Vault dev
// server from the cached binary (internal/tools/vault/build.sh) shared by
// the runs under a prefix of their own, or for AWS a Secrets Manager
// emulator and a DynamoDB emulator (the audit chain's table) per run, the
// ones rotor's tests use (internal/awsfake, internal/dynamofake).
type benchStore struct {
	kind  string
	vault *vaulttest.Server
	dir   string // the Vault token file's directory
	stop  func()
	runs  int
}

// startStore starts the store of kind (storeFile, storeVault, storeAWS).
// Close it when done.
func startStore(kind string) (*benchStore, error) {
	s := &benchStore{kind: kind, stop: func() {}}
	if kind != storeVault {
		return s, nil
	}
	v, stop, err := vaulttest.StartMain()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rotor-bench-vault")
	if err != nil {
		stop()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "vault-token"), []byte(v.Token), 0o600); err != nil {
		stop()
		os.RemoveAll(dir)
		return nil, err
	}
	s.vault, s.dir = v, dir
	s.stop = func() { stop(); os.RemoveAll(dir) }
	return s, nil
}

// Close stops what startStore started.
func (s *benchStore) Close() { s.stop() }

// forRun returns the store for one run, with its requests counted (Vault
// through a counting proxy in front of the server, AWS Secrets Manager by
// the emulator), and a function that releases what the run needed.
func (s *benchStore) forRun() (zerodowntime.Store, func(), error) {
	s.runs++
	switch s.kind {
	case storeVault:
		prefix := fmt.Sprintf("bench-%d-%d", s.runs, time.Now().UnixNano())
		c := newCounter(prefix)
		addr, stop, err := c.serve(s.vault.Addr)
		if err != nil {
			return zerodowntime.Store{}, nil, err
		}
		return zerodowntime.Store{
			Name: storeVault,
			Block: fmt.Sprintf("  type: vault\n  vault:\n    address: %s\n    prefix: %s\n    auth: {method: token, token_file: %q}\n",
				addr, prefix, filepath.Join(s.dir, "vault-token")),
			Requests: func() int64 { return int64(c.total()) },
		}, stop, nil
	case storeAWS:
		sm, stopSM := awsfake.StartMain(awsfake.Options{})
		db, stopDB := dynamofake.New()
		db.CreateTable("rotor-audit", "pk")
		return zerodowntime.Store{
			Name:  storeAWS,
			Block: fmt.Sprintf("  type: awssm\n  awssm:\n    region: %s\n    endpoint: %s\n", sm.Region(), sm.URL()),
			Audit: "  endpoint: " + db.URL() + "\n",
			// Static fake credentials: the emulators check that requests
			// are signed, not by whom.
			Env: []string{"AWS_ACCESS_KEY_ID=AKIDROTORBENCH", "AWS_SECRET_ACCESS_KEY=rotor-bench", "AWS_REGION=" + sm.Region(),
				"AWS_EC2_METADATA_DISABLED=true"},
			Requests: func() int64 { return int64(len(sm.Calls())) },
		}, func() { stopSM(); stopDB() }, nil
	}
	return zerodowntime.Store{}, func() {}, nil
}
