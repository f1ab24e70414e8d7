package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// TestPrefilterAgrees runs rules the prefilter understands (and some details it must get right:
// struct fields under a NULL struct, qualified columns, LIKE with _ and %, lists, NULLs, fields
// of JSON columns holding strings, numbers, nulls or nothing) on
// varied events through the engine, and compares each rule's matches with the rule run over
// the whole lake by DuckDB: the prefilter may only spare rows no rule matches.
func TestPrefilterAgrees(t *testing.T) {
	specs := map[string]string{
		"eq":       ruleSpec("Eq", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'FAILED'", ""),
		"in":       ruleSpec("In", "SELECT *, actor.name AS alert_dedup FROM panther_logs.panther_audit WHERE actionName IN ('CREATE_USER', 'DELETE_USER') AND actor.name <> 'ana'", ""),
		"like":     ruleSpec("Like", "SELECT * FROM panther_logs.panther_audit WHERE actionName LIKE 'UPDATE_S%' AND actionResult <> 'SUCCEEDED'", ""),
		"like_":    ruleSpec("LikeUnderscore", "SELECT * FROM panther_logs.panther_audit WHERE actionName LIKE 'SIGN_I_'", ""),
		"starts":   ruleSpec("Starts", "SELECT * FROM panther_logs.panther_audit WHERE starts_with(sourceIP, '10.1.')", ""),
		"struct":   ruleSpec("Struct", "SELECT * FROM panther_logs.panther_audit WHERE actor.type = 'TOKEN' AND actionResult = 'FAILED'", ""),
		"qualify":  ruleSpec("Qualified", "SELECT * FROM panther_logs.panther_audit WHERE panther_audit.userAgent = 'curl/8.0'", ""),
		"list":     ruleSpec("List", "SELECT * FROM panther_logs.panther_audit WHERE list_contains(p_any_ip_addresses, '203.0.113.9')", ""),
		"nullable": ruleSpec("NullableStruct", "SELECT * FROM panther_logs.panther_audit WHERE errors IS NOT NULL AND actionName = 'LIST_ALERTS'", ""),
		"contains": ruleSpec("Contains", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'SIGN_IN' AND userAgent LIKE '%url/%'", ""),
		"suffix":   ruleSpec("Suffix", "SELECT * FROM panther_logs.panther_audit WHERE actor.name LIKE '%na' AND actionResult IN ('FAILED', 'PARTIALLY_FAILED')", ""),
		"multi":    ruleSpec("Multi", "SELECT * FROM panther_logs.panther_audit WHERE actionName IN ('CREATE_USER', 'DELETE_USER') AND actor.type = 'TOKEN' AND actionResult = 'FAILED'", ""),
		"json":     ruleSpec("JSONField", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'GET_USER' AND (actionDetails->>'k') = 'v'", ""),
		"jsonlike": ruleSpec("JSONLike", "SELECT * FROM panther_logs.panther_audit WHERE (actor.attributes->>'email') LIKE '%@evil.example' AND actionResult <> 'SUCCEEDED'", ""),
		"jsonpath": ruleSpec("JSONPath", "SELECT * FROM panther_logs.panther_audit WHERE json_extract_string(actionDetails, '$.n.m') IN ('1', 'x') AND actionName = 'SIGN_IN'", ""),
		"jsonnot":  ruleSpec("JSONNotEqual", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'SIGN_OUT' AND (actionDetails->>'$.k') <> 'v'", ""),
	}
	set := rules(t, specs)
	dir := t.TempDir()
	h := newHarness(t, dir, set)
	rng := rand.New(rand.NewPCG(1, 2))
	actions := []string{"DELETE_DETECTION", "CREATE_USER", "DELETE_USER", "UPDATE_SAML_SETTINGS", "UPDATE_SETTINGS", "SIGN_IN", "SIGN_INX",
		"SIGN_OUT", "LIST_ALERTS", "GET_USER", "update_saml_settings"}
	results := []string{"SUCCEEDED", "FAILED", "PARTIALLY_FAILED"}
	actors := []string{"ana", "bob", "carla"}
	ips := []string{"10.1.2.3", "10.10.2.3", "203.0.113.9", "198.51.100.7", ""}
	total := 0
	for round := range 6 {
		var lines []string
		for i := range 400 {
			n := round*400 + i
			ip := ips[rng.IntN(len(ips))]
			ipField := ""
			if ip != "" {
				ipField = fmt.Sprintf(`,"sourceIP":%q`, ip)
			}
			actor := fmt.Sprintf(`{"id":"SSO_x","type":"USER","name":%q}`, actors[rng.IntN(len(actors))])
			switch rng.IntN(5) {
			case 0:
				actor = `{"id":"tok-1","type":"TOKEN"}`
			case 1:
				actor = fmt.Sprintf(`{"id":"SSO_y","type":"USER","name":"dan","attributes":{"email":%q}}`,
					[]string{"dan@evil.example", "dan@good.example", "dan@evil.example.com"}[rng.IntN(3)])
			case 2:
				actor = `{"id":"SSO_z","type":"USER","name":"eve","attributes":{"email":null,"role":"admin"}}`
			}
			extra := ""
			if rng.IntN(3) == 0 {
				extra = `,"userAgent":"curl/8.0"`
			}
			if rng.IntN(4) == 0 {
				extra += `,"errors":[{"message":"denied"}]`
			}
			// A string, another string, a number where a string is tested, nested fields.
			switch rng.IntN(6) {
			case 0, 1:
				extra += `,"actionDetails":{"k":"v"}`
			case 2:
				extra += `,"actionDetails":{"k":"w","n":{"m":"x"}}`
			case 3:
				extra += `,"actionDetails":{"k":7,"n":{"m":1}}`
			case 4:
				extra += `,"actionDetails":{"n":{"m":"y"},"k":null}`
			}
			lines = append(lines, fmt.Sprintf(`{"actionName":%q,"actionResult":%q,"actor":%s%s%s,"timestamp":"2026-11-20 08:%02d:%02d.000","pantherVersion":"1"}`,
				actions[rng.IntN(len(actions))], results[rng.IntN(len(results))], actor, ipField, extra, (n/60)%60, n%60))
		}
		total += len(lines)
		h.ingest(lines)
	}
	h.flush()
	st := h.engine.Stats()
	h.close()
	if st.RuleErrors > 0 {
		t.Errorf("%d rule errors: %s", st.RuleErrors, ruleErrors(t, h.lake))
	}
	if st.Prefiltered == 0 {
		t.Fatalf("the prefilter spared no row: stats %+v", st)
	}
	t.Logf("%d events, %d rows prefiltered away", total, st.Prefiltered)
	for _, id := range []string{"Eq", "In", "Like", "LikeUnderscore", "Starts", "Struct", "Qualified", "List", "NullableStruct",
		"Contains", "Suffix", "Multi", "JSONField", "JSONLike", "JSONPath", "JSONNotEqual"} {
		var q string
		for _, r := range set.Rules {
			if r.RuleID == id {
				q = r.Query
			}
		}
		want := count(t, h.lake, "SELECT count(*) FROM ("+q+")")
		got := count(t, h.lake, fmt.Sprintf("SELECT count(*) FROM panther_rule_matches.panther_audit WHERE p_rule_id = '%s'", id))
		if got != want {
			t.Errorf("rule %s: %d matches streaming, %d over the lake", id, got, want)
		}
		if want == 0 {
			t.Errorf("rule %s matches nothing: the test data does not exercise it", id)
		}
	}
}

// ruleErrors lists the distinct rule errors kept in the lake.
func ruleErrors(t *testing.T, l *lake.Lake) string {
	t.Helper()
	db, err := query.Open(context.Background(), l, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), "SELECT DISTINCT p_rule_id || ': ' || p_rule_error FROM panther_rule_errors.panther_audit")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}
