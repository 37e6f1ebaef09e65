"""Rails over HTTPS, with a private CA and client certificates (mTLS): real TLS on loopback."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import pytest
import trustme

from outbox_db import AttemptState, ClaimedItem
from outbox_relayer import RailConfigError, RailEndpoint
from outbox_relayer.rail_config import load_rails
from outbox_relayer.rails import check_tls_files
from relaying import BlockingRail, HeaderRecorder

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from outbox_db.testonly.blocking import EventLoopThread


@pytest.fixture
def rail_ca() -> trustme.CA:
    """The rail's private CA: it signs the rail's certificate and the relayer's."""
    return trustme.CA()


@pytest.fixture
def mtls_server(rail_ca: trustme.CA) -> ssl.SSLContext:
    """A server context for `localhost` that requires a client certificate of the rail's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    rail_ca.issue_cert("localhost").configure_cert(context)
    rail_ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def tls_files(tmp_path: Path, rail_ca: trustme.CA) -> dict[str, Path]:
    """The rail's CA, and a client certificate and key it issued, as files."""
    client = rail_ca.issue_cert("relayer@payments.example")
    files = {
        "ca_file": tmp_path / "rail-ca.pem",
        "client_cert_file": tmp_path / "relayer.pem",
        "client_key_file": tmp_path / "relayer.key",
    }
    rail_ca.cert_pem.write_to_path(str(files["ca_file"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert_file"]))
    client.private_key_pem.write_to_path(str(files["client_key_file"]))
    return files


def test_an_mtls_rail_is_reached_with_its_ca_and_the_relayers_certificate(
    loop: EventLoopThread,
    mtls_server: ssl.SSLContext,
    tls_files: dict[str, Path],
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """The rail verifies the relayer's certificate, the relayer the rail's: DISPATCHED."""
    with HeaderRecorder(loop, tls=mtls_server) as rail_server:
        endpoint = RailEndpoint(rail_type="rtp", url=rail_server.url, **tls_files)  # type: ignore[arg-type]
        rail = blocking_rail(endpoint)
        answer = rail.send(make_item())
        # Closed first: the server's TLS shutdown waits for its idle client's close_notify.
        rail.close()

    assert (answer.state, answer.rail_reference) == (AttemptState.DISPATCHED, "ref-1")
    assert len(rail_server.requests) == 1


@pytest.mark.parametrize(
    "left_out",
    [("client_cert_file", "client_key_file"), ("ca_file",)],
    ids=["no client certificate", "system CAs only"],
)
def test_an_mtls_rail_is_not_reached_without_the_certificate_or_the_ca(  # noqa: PLR0913, PLR0917
    left_out: tuple[str, ...],
    loop: EventLoopThread,
    mtls_server: ssl.SSLContext,
    tls_files: dict[str, Path],
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Either side unverified: no request reaches the rail, and the send is a retry."""
    files = {key: path for key, path in tls_files.items() if key not in left_out}
    with HeaderRecorder(loop, tls=mtls_server) as rail_server:
        endpoint = RailEndpoint(rail_type="rtp", url=rail_server.url, **files)  # type: ignore[arg-type]
        answer = blocking_rail(endpoint).send(make_item())

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_CONNECTION_ERROR")
    assert rail_server.requests == []


def test_the_rails_file_names_the_tls_files_and_refuses_them_on_plain_http(
    tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    """`ca_file` and the client certificate are read from the rails file, for https:// only."""
    rails = tmp_path / "rails.toml"
    named = "\n".join(f'{key} = "{path}"' for key, path in tls_files.items())
    rails.write_text(f'[rails.rtp]\nurl = "https://rail.example/payments"\n{named}\n')
    [endpoint] = load_rails(rails).values()
    assert (endpoint.ca_file, endpoint.client_cert_file) == (
        tls_files["ca_file"],
        tls_files["client_cert_file"],
    )
    check_tls_files(endpoint)  # loads them: no RailConfigError

    rails.write_text(f'[rails.rtp]\nurl = "http://rail.example/payments"\n{named}\n')
    with pytest.raises(RailConfigError, match=r"rails\.rtp\.ca_file needs an https:// url"):
        load_rails(rails)


def test_an_unloadable_certificate_stops_the_rail_at_start_naming_the_file_only(
    tls_files: dict[str, Path],
) -> None:
    """A key that does not match its certificate: a RailConfigError, without the key's bytes."""
    stranger_key = trustme.CA().issue_cert("stranger").private_key_pem
    stranger_key.write_to_path(str(tls_files["client_key_file"]))
    endpoint = RailEndpoint(
        rail_type="rtp",
        url="https://rail.example/payments",
        ca_file=tls_files["ca_file"],
        client_cert_file=tls_files["client_cert_file"],
        client_key_file=tls_files["client_key_file"],
    )

    with pytest.raises(RailConfigError, match="cannot load its TLS files") as refused:
        check_tls_files(endpoint)

    assert str(tls_files["client_key_file"]) in str(refused.value)
    assert "PRIVATE KEY" not in str(refused.value)
