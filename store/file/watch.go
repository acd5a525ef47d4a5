package file

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed with the name of each secret whose file is created
// or replaced, by this process or any other, until stop is called. Saves
// that complete after Watch returns are reported. `rotor serve` uses it to
// push a rotation made by the CLI to its watchers at once, without polling
// the store.
//
// It relies on the operating system's file change notifications (inotify
// on Linux, kqueue on the BSDs and macOS, through fsnotify), which do not
// work on every file system: on network file systems (NFS, SMB) changes
// made by other machines are not reported, so callers keep polling as
// well. When the kernel drops notifications (its queue overflowed), Watch
// reports every stored secret as changed. changed runs on one goroutine,
// one call at a time, and should be quick. stop waits for it to return.
func (s *Store) Watch(changed func(name string)) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", s.dir, err)
	}
	if err := w.Add(s.dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", s.dir, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dispatch(w, changed)
	}()
	return func() {
		w.Close()
		<-done
	}, nil
}

// dispatch turns w's events into calls of changed until w is closed.
func (s *Store) dispatch(w *fsnotify.Watcher, changed func(name string)) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// A save renames its temp file over the secret file, which
			// inotify reports as a create of the secret file's name.
			if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
				continue
			}
			if name, ok := nameOfSecretFile(filepath.Base(ev.Name)); ok {
				changed(name)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				names, err := s.names()
				if err != nil {
					continue
				}
				for _, n := range names {
					changed(n)
				}
			}
		}
	}
}
