package connect

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// TestAthenaScriptOnMoto runs the shell script printed for Athena (a lake whose catalog Athena
// cannot read) with the AWS CLI against moto_server's Glue, twice: the first run creates the
// database and the table, the second, after a commit, updates the table to the new metadata
// file. Each time the Glue table must carry what Athena needs: table_type=ICEBERG and the
// current metadata_location.
func TestAthenaScriptOnMoto(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed: skipping the run of the printed aws glue commands")
	}
	m := s3test.StartMoto(t)
	env := append(os.Environ(), "AWS_ENDPOINT_URL="+m.URL, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	check := func(want iceberg.Pointer) {
		t.Helper()
		var got struct {
			Table struct {
				TableType         string
				Parameters        map[string]string
				StorageDescriptor struct{ Location string }
			}
		}
		out := run("aws", "glue", "get-table", "--region", "eu-west-1", "--database-name", want.DB, "--name", want.Table)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("aws glue get-table: %v\n%s", err, out)
		}
		if got.Table.Parameters["table_type"] != "ICEBERG" || got.Table.Parameters["metadata_location"] != want.Location ||
			got.Table.TableType != "EXTERNAL_TABLE" || got.Table.StorageDescriptor.Location != s3Root+"/panther_logs/panther_audit" {
			t.Errorf("Glue table %s.%s = %+v, want table_type ICEBERG, metadata_location %s", want.DB, want.Table, got.Table, want.Location)
		}
	}
	l := s3Lake(iceberg.Postgres)
	for _, version := range []string{"00007-e02f021e-4325-4115-8266-4a6628ff0848", "00008-9d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d"} {
		p := iceberg.Pointer{DB: "panther_logs", Table: "panther_audit", Location: s3Root + "/panther_logs/panther_audit/metadata/" + version + ".metadata.json"}
		l.Tables = []iceberg.Pointer{p}
		run("sh", "-c", write(t, Athena, l))
		check(p)
	}
}
