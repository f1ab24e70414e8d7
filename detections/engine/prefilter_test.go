package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPrefilterAgrees runs rules the prefilter understands (and some details it must get right:
// struct fields under a NULL struct, qualified columns, LIKE with _ and %, lists, NULLs) on
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
		"json":     ruleSpec("NotAString", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'GET_USER' AND (actionDetails->>'k') = 'v'", ""),
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
			if rng.IntN(5) == 0 {
				actor = `{"id":"tok-1","type":"TOKEN"}`
			}
			extra := ""
			if rng.IntN(3) == 0 {
				extra = `,"userAgent":"curl/8.0"`
			}
			if rng.IntN(4) == 0 {
				extra += `,"errors":[{"message":"denied"}]`
			}
			if rng.IntN(2) == 0 {
				extra += `,"actionDetails":{"k":"v"}`
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
	if st.Prefiltered == 0 {
		t.Fatalf("the prefilter spared no row: stats %+v", st)
	}
	t.Logf("%d events, %d rows prefiltered away", total, st.Prefiltered)
	for _, id := range []string{"Eq", "In", "Like", "LikeUnderscore", "Starts", "Struct", "Qualified", "List", "NullableStruct",
		"Contains", "Suffix", "Multi", "NotAString"} {
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
