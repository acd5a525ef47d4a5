// Command rotor rotates application credentials with zero downtime.
//
// Run `rotor --help` for the commands; README.md has a quickstart, the
// configuration reference and the security model.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], newEnv()))
}
