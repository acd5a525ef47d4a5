package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// generatePassword draws length characters uniformly from alphabet with
// crypto/rand. It retries the rare draw that a client would normalise
// differently (characters that compose with each other), so every client
// hashes exactly these bytes.
func generatePassword(length int, alphabet string) (string, error) {
	runes := []rune(alphabet)
	n := big.NewInt(int64(len(runes)))
	for range 100 {
		out := make([]rune, length)
		for i := range out {
			j, err := rand.Int(rand.Reader, n)
			if err != nil {
				return "", fmt.Errorf("generate password: %w", err)
			}
			out[i] = runes[j.Int64()]
		}
		pw := string(out)
		if stable(pw) {
			return pw, nil
		}
	}
	return "", fmt.Errorf("generate password: no normalisation-stable draw from this alphabet")
}

func stable(pw string) bool {
	p, err := precis.OpaqueString.String(pw)
	return err == nil && p == pw && norm.NFKC.String(pw) == pw
}

// SCRAM-SHA-256 parameters of the verifiers rotor sends; PostgreSQL's own
// defaults (scram_iterations 4096, 16-byte salt).
const (
	scramIterations = 4096
	scramSaltLen    = 16
)

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (RFC 5802 §3, RFC 7677), in the text form of
// pg_authid.rolpassword:
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// rotor sends ALTER ROLE … PASSWORD with this verifier, as psql's \password
// does, so the password itself never reaches the server and cannot appear
// in its statement log. A verifier is four standard primitives (PBKDF2,
// HMAC, SHA-256, base64) from the standard library; no SCRAM library
// exposes it more simply. The password must already be in normalised form
// (see [stable]), because clients normalise before hashing.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramVerifierWith(password, salt, scramIterations)
}

func scramVerifierWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
