// Package alert holds the alerts detections raise: what an alert is, how matches are grouped
// into alerts (dedup key and window, threshold) and the durable state of every alert.
package alert

import (
	"encoding/json"
	"time"
)

// Alert types.
const (
	TypeRule          = "RULE"           // raised by a streaming rule
	TypeScheduledRule = "SCHEDULED_RULE" // raised by a scheduled rule
)

// Statuses of an alert.
const (
	StatusOpen     = "OPEN"
	StatusResolved = "RESOLVED"
)

// Alert is one alert: the matches of a rule that share a dedup string within the rule's dedup
// window. It is what destinations receive (as JSON) and what osprey alerts lists.
type Alert struct {
	AlertID     string              `json:"alertId"` // 32 hex digits, unique
	Type        string              `json:"type"`    // TypeRule or TypeScheduledRule
	RuleID      string              `json:"ruleId"`
	RuleName    string              `json:"ruleName,omitempty"` // the rule's DisplayName
	Title       string              `json:"title"`
	Severity    string              `json:"severity"` // Info, Low, Medium, High or Critical
	Dedup       string              `json:"dedup"`    // the dedup string (alert_dedup, or the rule id)
	LogTypes    []string            `json:"logTypes,omitempty"`
	Description string              `json:"description,omitempty"`
	Runbook     string              `json:"runbook,omitempty"`
	Reference   string              `json:"reference,omitempty"`
	Tags        []string            `json:"tags,omitempty"`
	Reports     map[string][]string `json:"reports,omitempty"`
	OutputIDs   []string            `json:"outputIds,omitempty"` // destinations; empty: all of them
	Status      string              `json:"status"`
	// CreatedAt starts the dedup window: matches with the same dedup string until
	// CreatedAt+DedupPeriod join this alert.
	CreatedAt   time.Time     `json:"creationTime"`
	UpdatedAt   time.Time     `json:"updateTime"`
	DedupPeriod time.Duration `json:"-"`
	// Events counts the matches the alert holds; FirstEvent and LastEvent are the earliest and
	// latest p_event_time among them.
	Events     int64     `json:"eventCount"`
	FirstEvent time.Time `json:"firstEventTime"`
	LastEvent  time.Time `json:"lastEventTime"`
	// Context is alert_context of the match that raised the alert (a JSON value), and
	// Sample is that match's row as a JSON object.
	Context json.RawMessage `json:"context,omitempty"`
	Sample  json.RawMessage `json:"sample,omitempty"`
	// ResolvedAt and ResolvedBy are set when the alert is resolved.
	ResolvedAt time.Time `json:"resolvedTime,omitzero"`
	ResolvedBy string    `json:"resolvedBy,omitempty"`
}
