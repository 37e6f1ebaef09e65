"""The rail simulator over real HTTP: dedupe by key, request log, stats, lookups and faults."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import socket
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import attrs
import httpx
import pytest

from outbox_relayer.testing import Faults, RailSimulator, SimulatorStats, read_request_log

if TYPE_CHECKING:
    from collections.abc import Callable


def post(
    client: httpx.Client, simulator: RailSimulator, key: str | None, payload: object
) -> httpx.Response:
    """One POST /payments with the given key (None: no Idempotency-Key header)."""
    headers = {} if key is None else {"Idempotency-Key": key}
    body = json.dumps(payload).encode()
    return client.post(simulator.payments_url, content=body, headers=headers)


def test_request_log_has_one_line_per_request_with_key_digest_answer_and_absorption(
    client: httpx.Client,
    simulator: RailSimulator,
) -> None:
    """Every POST is logged in arrival order: key, payload digest, status, reference, absorbed."""
    payload = {"amount": "5.00"}
    first = post(client, simulator, "k-1", payload)
    post(client, simulator, "k-1", payload)
    post(client, simulator, "k-2", payload)

    lines = read_request_log(simulator.log_path)

    digest = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
    reference = first.json()["reference"]
    assert [
        (1, "k-1", digest, 201, reference, False, None),
        (2, "k-1", digest, 201, reference, True, None),
        (3, "k-2", digest, 201, lines[2].reference, False, None),
    ] == [
        (x.seq, x.idempotency_key, x.payload_sha256, x.status, x.reference, x.absorbed, x.fault)
        for x in lines
    ]
    assert lines[2].reference not in {None, reference}
    assert lines[0].monotonic <= lines[1].monotonic <= lines[2].monotonic


def test_stats_count_requests_keys_absorbed_and_statuses(
    client: httpx.Client, simulator: RailSimulator
) -> None:
    """GET /stats and stats() agree: requests, unique keys, absorbed repeats, answers by status."""
    for key in ("a", "a", "a", "b"):
        post(client, simulator, key, {"n": 1})
    post(client, simulator, "c", {"simulate_status": 422})
    post(client, simulator, None, {"n": 1})

    served = client.get(f"{simulator.url}/stats").json()

    expected = SimulatorStats(
        requests=6,
        unique_keys=3,
        recorded_keys=3,
        absorbed=2,
        by_status={"201": 4, "400": 1, "422": 1},
        faults={},
    )
    assert expected == simulator.stats()
    assert attrs.asdict(expected) == served


def test_post_without_an_idempotency_key_is_refused(
    client: httpx.Client, simulator: RailSimulator
) -> None:
    """The rail refuses a payment without an Idempotency-Key, and says why."""
    response = post(client, simulator, None, {"n": 1})

    assert (response.status_code, response.json()) == (400, {"error": "IDEMPOTENCY_KEY_REQUIRED"})


def test_a_request_cut_short_is_neither_recorded_nor_answered(
    client: httpx.Client, simulator: RailSimulator
) -> None:
    """A client killed mid-body leaves no outcome behind: its whole re-send is the first."""
    address = urlsplit(simulator.url)
    head = (
        "POST /payments HTTP/1.1\r\nHost: rail\r\nIdempotency-Key: k1\r\n"
        'Content-Type: application/json\r\nContent-Length: 35\r\n\r\n{"amount"'
    )
    with socket.create_connection((address.hostname or "", address.port or 0)) as cut:
        cut.sendall(head.encode())

    resent = post(client, simulator, "k1", {"amount": "1.00"})

    assert resent.status_code == 201
    assert [
        (r.idempotency_key, r.status, r.absorbed) for r in read_request_log(simulator.log_path)
    ] == [("k1", 201, False)]


def test_reused_key_with_another_payload_is_refused_and_keeps_the_first_outcome(
    client: httpx.Client,
    simulator: RailSimulator,
) -> None:
    """One key, two payloads: 422 IDEMPOTENCY_KEY_REUSED, and the first answer still stands."""
    first = post(client, simulator, "k", {"amount": "1.00"})

    reused = post(client, simulator, "k", {"amount": "2.00"})

    assert (reused.status_code, reused.json()) == (422, {"error": "IDEMPOTENCY_KEY_REUSED"})
    lookup = client.get(f"{simulator.url}/payments/k").json()
    assert first.json()["reference"] == lookup["reference"]


def test_lookup_by_key_returns_the_recorded_outcome_or_404(
    client: httpx.Client, simulator: RailSimulator
) -> None:
    """GET /payments/<quoted key> returns the key's first answer; an unknown key is 404."""
    key = "ins-42/v1"
    payload = {"amount": "1.00"}
    answer = post(client, simulator, key, payload).json()

    found = client.get(f"{simulator.url}/payments/{quote(key, safe='')}")
    unknown = client.get(f"{simulator.url}/payments/never-sent")

    assert {
        "idempotency_key": key,
        "status": 201,
        "reference": answer["reference"],
        "payload_sha256": hashlib.sha256(json.dumps(payload).encode()).hexdigest(),
    } == found.json()
    assert unknown.status_code == 404


def test_timed_out_and_dropped_requests_are_recorded_so_the_retry_is_absorbed(
    client: httpx.Client,
    start_simulator: Callable[..., RailSimulator],
) -> None:
    """The rail acted before its answer was lost: the key's outcome exists for the retry."""
    for faults in (Faults(timeout_rate=1.0, hang_seconds=30), Faults(drop_rate=1.0)):
        simulator = start_simulator(faults)
        with pytest.raises(httpx.TransportError):
            client.post(
                simulator.payments_url, content=b"{}", headers={"Idempotency-Key": "k"}, timeout=0.2
            )

        lookup = client.get(f"{simulator.url}/payments/k")

        assert lookup.status_code == 200
        assert simulator.stats().recorded_keys == 1


def test_same_seed_gives_the_same_fault_sequence(
    client: httpx.Client,
    start_simulator: Callable[..., RailSimulator],
) -> None:
    """Faults are drawn from one seeded generator: the same seed answers the same way."""
    runs = []
    for _ in range(2):
        simulator = start_simulator(Faults(fail_rate=0.5, seed=7))
        runs.append([post(client, simulator, f"k-{n}", {"n": n}).status_code for n in range(20)])

    assert runs[0] == runs[1]
    assert {201, 503} == set(runs[0])


def test_rates_above_one_in_total_are_refused() -> None:
    """The fault rates cannot exceed 1 in total: each request draws at most one fault."""
    with pytest.raises(ValueError, match="must not exceed 1"):
        Faults(fail_rate=0.5, timeout_rate=0.3, drop_rate=0.3)


def test_a_throttled_request_is_answered_429_with_retry_after_and_not_recorded(
    client: httpx.Client,
    start_simulator: Callable[..., RailSimulator],
) -> None:
    """--throttle-rate: 429 with the configured Retry-After; the rail did not act on it."""
    simulator = start_simulator(Faults(throttle_rate=1.0, retry_after_seconds=3))

    answer = post(client, simulator, "k", {"n": 1})

    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "3")
    assert client.get(f"{simulator.url}/payments/k").status_code == 404
    (line,) = read_request_log(simulator.log_path)
    assert (line.status, line.fault, line.absorbed) == (429, "throttle", False)
    assert simulator.stats().faults == {"throttle": 1}


@pytest.mark.parametrize("retry_after", [-1, 1.5])
def test_retry_after_must_be_whole_non_negative_seconds(retry_after: float) -> None:
    """A Retry-After the header cannot carry (negative, fractional) is refused up front."""
    with pytest.raises((ValueError, TypeError)):
        Faults(throttle_rate=0.1, retry_after_seconds=retry_after)  # type: ignore[arg-type]


def test_throttle_counts_toward_the_total_fault_rate() -> None:
    """Each request draws at most one fault, the throttle included."""
    with pytest.raises(ValueError, match="throttle_rate must not exceed 1"):
        Faults(fail_rate=0.5, throttle_rate=0.6)


def test_a_burst_of_new_connections_all_reach_the_rail(
    start_simulator: Callable[..., RailSimulator],
) -> None:
    """128 clients connecting at once (relayers starting) are all served, none reset unseen."""
    simulator = start_simulator(Faults(latency_ms=300))

    def send(n: int) -> int:
        with httpx.Client() as fresh:  # a connection of its own, opened in the burst
            return post(fresh, simulator, f"k-{n}", {"n": n}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=128) as pool:
        statuses = list(pool.map(send, range(128)))

    assert statuses == [201] * 128
    assert simulator.stats().requests == 128


def test_importing_the_relayer_loads_neither_the_simulator_nor_its_http_server() -> None:
    """Relayer processes send with libcurl: they never load aiohttp, serve a rail or audit one."""
    probe = (
        "import sys, outbox_relayer, outbox_relayer.relayer, outbox_relayer.process; "
        "print(sorted(m for m in sys.modules "
        "if m.partition('.')[0] == 'aiohttp' or 'outbox_relayer.testing' in m))"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout

    assert loaded.strip() == "[]"
