"""Nodes of a cluster: who a node is (identity), which nodes are live (leases), whether
this one holds a seat (admission), and a node's life from start to stop (lifecycle), with
the restart rules. See docs/cluster.md."""
