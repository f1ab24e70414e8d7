package main

import (
	"context"
	"os"

	"golang.org/x/term"

	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/query/shell"
)

// runREPL opens the interactive shell (stdin is a terminal).
func runREPL(ctx context.Context, g *globals, o *sqlOptions, params map[string]any) error {
	l, err := g.readLake()
	if err != nil {
		return err
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: o.memoryLimit, LazyViews: true})
	if err != nil {
		return err
	}
	defer db.Close()
	history := o.history
	if history == "" {
		history = shell.DefaultHistoryFile()
	}
	sh := shell.New(db, shell.Options{
		Params:      params,
		HistoryFile: history,
		Timeout:     o.timeout,
		Width: func() int {
			w, _, err := term.GetSize(int(os.Stdout.Fd()))
			if err != nil {
				return 0
			}
			return w
		},
	})
	return sh.Run(ctx)
}
