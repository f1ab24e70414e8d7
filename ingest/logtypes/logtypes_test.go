package logtypes

import "testing"

func TestBuiltin(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Panther.Audit", "Rapid7.AuditLog", "Linux.Auditd"} {
		lt, err := r.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lt.NewParser(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := r.Lookup("panther.audit"); err == nil {
		t.Error("lookup is case-sensitive, like Panther's")
	}
}
