// Package builtin holds Osprey's built-in detection pack: rules for Panther.Audit,
// Linux.Auditd and Rapid7.AuditLog, each a spec file of this directory embedded in the binary,
// with its own Tests (osprey detect test runs them).
package builtin

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/ospreyhq/osprey/detections"
)

//go:embed *.yml
var pack embed.FS

// Root is the directory of the pack's spec files in FS; errors and listings name a spec as
// builtin/<file>.
const Root = "builtin"

// FS returns the pack's spec files, under Root.
func FS() fs.FS { return prefixFS{pack} }

// Load loads the pack.
func Load() (*detections.Set, error) { return detections.LoadFS(FS(), Root) }

// LoadWith loads the specs of dirs (detections.LoadDirs) and, when withPack, the pack's with
// them. A rule of dirs with the id of a built-in rule is an error.
func LoadWith(dirs []string, withPack bool) (*detections.Set, error) {
	set, err := detections.LoadDirs(dirs)
	if err != nil || !withPack {
		return set, err
	}
	pack, err := Load()
	if err != nil {
		return nil, fmt.Errorf("built-in detections: %w", err)
	}
	if prev, r := set.Merge(pack); r != nil {
		return nil, fmt.Errorf("%s:%d: rule %s is also a built-in rule (%s:%d)", prev.File, prev.Line, r.RuleID, r.File, r.Line)
	}
	return set, nil
}

// prefixFS shows a file system's files under the directory Root, so that the specs' file names
// say where they come from.
type prefixFS struct{ fs.FS }

func (p prefixFS) Open(name string) (fs.File, error) {
	switch {
	case name == Root:
		return p.FS.Open(".")
	case len(name) > len(Root) && name[:len(Root)+1] == Root+"/":
		return p.FS.Open(name[len(Root)+1:])
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
