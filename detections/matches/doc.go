// Package matches records what detection rules found, for the streaming engine
// (detections/engine) and scheduled rules (detections/scheduled) alike:
//
//   - the rows of panther_rule_matches.<table>: a table's rows that a rule matched, with the
//     p_alert_* and p_rule_* columns added (Rows); and of panther_rule_errors.<table>: rows a
//     rule failed on, with p_rule_error and p_rule_error_time (ErrorRows);
//   - the alert counts of those matches, committed with the lake flush that commits the rows:
//     PrepareAlertsLane journals a lane of the alert store as an epoch and writes a row of
//     panther_monitor.alert_history per changed alert through the flush's writer, the flush
//     commits the epoch's number in its metadata (MetaEpoch), and CommitAlerts or AbortAlerts
//     settles it after. A crash in between is settled when the store is next opened:
//     CommittedEpoch reads the epoch a writer's last flush committed from the lake.
//
// The streaming engine counts in the store's default lane, each scheduled query in a lane of
// its own, so that one store shared by both commits each one's matches with its own flushes.
// See package alert for why every match is then counted once.
package matches
