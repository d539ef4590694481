package excludes

import "io/fs"

// FS is here so that this file imports io/fs.
type FS = fs.FS
