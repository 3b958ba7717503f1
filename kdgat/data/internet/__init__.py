"""internet: network flows (Zeek conn.log, CICFlowMeter CSV) -> host graphs (docs/data.md).

Nodes are hosts, never a learned identity (memorising attacker addresses is a shortcut, not
detection): there is no vocabulary and every node_id is UNKNOWN_ID. Edges are flows
originator -> responder aggregated per host pair, carrying labels so that flows are scored too.
"""
