"""outbox-evidence: a deterministic evidence bundle for the payments outbox, and its verifier."""

from outbox_evidence.bundle import Bundle, BundleError, Inputs, build, write
from outbox_evidence.manifest import Invariant, Manifest, ManifestError, load_manifest
from outbox_evidence.verify import verify

__all__ = [
    "Bundle",
    "BundleError",
    "Inputs",
    "Invariant",
    "Manifest",
    "ManifestError",
    "build",
    "load_manifest",
    "verify",
    "write",
]
