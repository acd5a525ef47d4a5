//go:build unix

package file

import "syscall"

// oNoFollow makes opening a symbolic link fail with ELOOP.
const oNoFollow = syscall.O_NOFOLLOW
