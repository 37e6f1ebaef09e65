"""The fault-injection matrix (`nox -s faults`): relayer processes against rail-sim, then audited.

Each scenario enqueues its own items on a rail_type of its own, runs real `outbox-relayer run`
processes (a dedicated repairer and relayers) against an `outbox-relayer rail-sim` process over
HTTP, injects its faults while the queue drains, and ends with the delivery audit of the ledger
against the rail's request log plus the checks the scenario's faults call for.
"""
