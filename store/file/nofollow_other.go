//go:build !unix

package file

// oNoFollow is 0 where open has no O_NOFOLLOW (Windows): a symbolic link
// in the store directory is followed there.
const oNoFollow = 0
