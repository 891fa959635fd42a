// Package web holds the console's front end: a TypeScript single-page application built
// by npm and Vite into dist/ (make console), embedded into the binary. A build without
// the assets serves a page that says how to build them.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Assets is the built front end, or false when dist/ holds no build.
func Assets() (fs.FS, bool) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, false
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil, false
	}
	return sub, true
}
