package main

import (
	"context"
	"errors"

	"github.com/ospreyhq/osprey/query"
)

func runREPL(ctx context.Context, g *globals, o *sqlOptions, params map[string]any) error {
	_ = query.Formats
	return errors.New("TODO")
}
