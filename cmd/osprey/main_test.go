package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The scripts in testdata/script run the osprey command end to end: ingest files into a lake
// in the script's work directory, then query it.
func TestMain(m *testing.M) {
	// The REPL test runs this binary as osprey in a pseudo-terminal.
	if os.Getenv("OSPREY_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	testscript.Main(m, map[string]func(){
		"osprey": main, // with its signal handling: serve tests stop it with SIGTERM
	})
}

func TestScripts(t *testing.T) {
	samples, err := filepath.Abs(filepath.Join("..", "..", "testdata", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("SAMPLES", samples)
			env.Setenv("OSPREY_LAKE", filepath.Join(env.WorkDir, "lake"))
			return nil
		},
	})
}
