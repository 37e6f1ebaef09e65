"""Ed25519 keys and signatures for ledger checkpoints, and their JSON form.

The private key lives with the checkpoint exporter (a file only its user may read), never in
the database and never in a log; the public key travels with every checkpoint's key id, in
the evidence bundle and in the exporter's directory, so a verifier holds only public keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import TYPE_CHECKING, Any, Final

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from outbox_evidence.ledger import FORMAT, FORMAT_ROWS, Checkpoint, Leaf, leaves_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

__all__ = [
    "KeyError_",
    "PublicKey",
    "SigningKey",
    "checkpoint_from_json",
    "checkpoint_header",
    "checkpoint_to_json",
    "unverified",
]

_CONTEXT: Final = FORMAT.encode() + b"\n"  # a signature over a head means nothing else
_PUBLIC_PREFIX: Final = "ed25519:"


class KeyError_(Exception):  # noqa: N801 - KeyError is the builtin's
    """A key file that cannot be used, said in words one can act on (never its content)."""


@attrs.frozen
class PublicKey:
    """An Ed25519 public key, written `ed25519:<64 hex digits>`, named by its key id."""

    raw: bytes

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """`ed25519:<hex>`, as `str()` writes it and the bundle carries it."""
        value = text.strip()
        try:
            raw = bytes.fromhex(value.removeprefix(_PUBLIC_PREFIX))
        except ValueError:
            raw = b""
        if not value.startswith(_PUBLIC_PREFIX) or len(raw) != 32:  # noqa: PLR2004 - Ed25519
            msg = "not an Ed25519 public key (expected 'ed25519:' and 64 hex digits)"
            raise KeyError_(msg)
        return cls(raw)

    @property
    def key_id(self) -> str:
        """The first 16 hex digits of the key's SHA-256: which key signed a checkpoint."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def verifies(self, checkpoint: Checkpoint) -> bool:
        """The checkpoint's signature is this key's, over its head."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(
                checkpoint.signature, _CONTEXT + checkpoint.head
            )
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return _PUBLIC_PREFIX + self.raw.hex()


class SigningKey:
    """The exporter's private key; repr and str never show it."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        """A new key (`outbox-evidence checkpoint-key`)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """A PKCS#8 PEM key from a file only its owner may read (mode 0600 or stricter)."""
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as error:
            msg = f"{path}: cannot read the checkpoint key ({error.strerror})"
            raise KeyError_(msg) from error
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = f"{path}: the checkpoint key is readable by others; chmod 600 it"
            raise KeyError_(msg)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as error:
            msg = f"{path}: not an unencrypted PKCS#8 PEM private key"
            raise KeyError_(msg) from error
        if not isinstance(key, Ed25519PrivateKey):
            msg = f"{path}: not an Ed25519 key"
            raise KeyError_(msg)
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM, mode 0600, refusing to replace a file."""
        data = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)

    @property
    def public(self) -> PublicKey:
        """The key a verifier trusts."""
        return PublicKey(
            self._key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        """The checkpoint with this key's id and signature over its head."""
        signature = self._key.sign(_CONTEXT + checkpoint.head)
        return attrs.evolve(checkpoint, key_id=self.public.key_id, signature=signature)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.public.key_id})"


def unverified(checkpoints: Iterable[Checkpoint], keys: Iterable[PublicKey]) -> list[str]:
    """The checkpoints no trusted key signed, each named with why."""
    trusted = {key.key_id: key for key in keys}
    problems = []
    for checkpoint in checkpoints:
        key = trusted.get(checkpoint.key_id)
        if key is None:
            problems.append(
                f"checkpoint {checkpoint.number}: signed by untrusted key "
                f"{checkpoint.key_id or '(none)'}"
            )
        elif not key.verifies(checkpoint):
            problems.append(f"checkpoint {checkpoint.number}: signature does not verify")
    return problems


def checkpoint_to_json(checkpoint: Checkpoint) -> str:
    """JSON: the header, the head and the signature; then every leaf (/2: on a line of its own).

    A /2 header carries its leaf count and range digest, so a verifier checks the signature
    without reading the leaves, and reads them only when the rows' hash does not match.
    """
    document: dict[str, object] = {
        "format": FORMAT if checkpoint.rows_sha256 is None else FORMAT_ROWS,
        "checkpoint": checkpoint.number,
        "previous_head": checkpoint.previous_head.hex(),
        "after": checkpoint.after,
        "horizon": checkpoint.horizon,
        "sealed_at": checkpoint.sealed_at,
        "range_digest": checkpoint.range_digest.hex(),
        "head": checkpoint.head.hex(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature.hex(),
    }
    leaves = leaves_json(checkpoint.leaves)
    if checkpoint.rows_sha256 is None:
        return _json(document | {"leaves": json.loads(leaves)})
    document |= {
        "leaf_count": checkpoint.leaf_count,
        "leaves_sha256": checkpoint.leaves_sha256.hex(),
        "rows_sha256": checkpoint.rows_sha256.hex(),
    }
    return _json(document) + "\n" + leaves


def checkpoint_from_json(text: str) -> Checkpoint:
    """A checkpoint read back, leaves included; ValueError when it is not one.

    Its head is recomputed from its leaves, never read.
    """
    header, _, leaves = text.strip().partition("\n")
    checkpoint = checkpoint_header(header)
    if checkpoint.rows_sha256 is None:
        return checkpoint
    try:
        return attrs.evolve(checkpoint, leaves=_leaves(json.loads(leaves)), signed_range=None)
    except ValueError as error:
        msg = f"checkpoint {checkpoint.number}: unreadable leaves ({error})"
        raise ValueError(msg) from error


def checkpoint_header(line: str) -> Checkpoint:
    """A checkpoint's first line read back: a /2 header's leaves are left unread.

    ValueError when it is not a checkpoint. A /1 line holds its leaves: they are read, its
    head is computed from them.
    """
    document: Mapping[str, Any] = json.loads(line)
    fmt = document.get("format")
    if fmt not in {FORMAT, FORMAT_ROWS}:
        msg = f"not a {FORMAT} or {FORMAT_ROWS} document"
        raise ValueError(msg)
    try:
        checkpoint = Checkpoint(
            number=int(document["checkpoint"]),
            previous_head=bytes.fromhex(document["previous_head"]),
            after=int(document["after"]),
            horizon=int(document["horizon"]),
            sealed_at=str(document["sealed_at"]),
            leaves=(),
            key_id=str(document["key_id"]),
            signature=bytes.fromhex(document["signature"]),
        )
        if fmt == FORMAT:
            return attrs.evolve(checkpoint, leaves=_leaves(document["leaves"]))
        signed = (
            int(document["leaf_count"]),
            bytes.fromhex(document["range_digest"]),
            bytes.fromhex(document["leaves_sha256"]),
        )
        rows = bytes.fromhex(document["rows_sha256"])
    except (KeyError, TypeError) as error:
        msg = f"incomplete checkpoint ({error})"
        raise ValueError(msg) from error
    return attrs.evolve(checkpoint, rows_sha256=rows, signed_range=signed)


def _leaves(found: object) -> tuple[Leaf, ...]:
    try:
        return tuple(
            Leaf(int(no), str(source), str(key), int(xact), bytes.fromhex(digest))
            for no, source, key, xact, digest in found  # type: ignore[attr-defined]
        )
    except TypeError as error:
        msg = f"incomplete leaves ({error})"
        raise ValueError(msg) from error


def _json(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
