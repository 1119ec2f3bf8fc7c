"""manifest.json: the sha256 of every file of a run, optionally signed with Ed25519.

``compressctl verify RUN_DIR`` recomputes every hash and names each file that differs, is
missing or was added; with ``--public-key`` it also checks the signature in manifest.sig.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.core.measure import sha256_file

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_NOT_LISTED = {MANIFEST, SIGNATURE}


def _files(run_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file() and p.relative_to(run_dir).as_posix() not in _NOT_LISTED
    )


def manifest_bytes(run_dir: Path) -> bytes:
    files = {name: {"sha256": sha256_file(run_dir / name), "size_bytes": (run_dir / name).stat().st_size}
             for name in _files(run_dir)}  # fmt: skip
    return (json.dumps({"schema_version": 1, "files": files}, indent=2, sort_keys=True) + "\n").encode()


def _load_private_key(path: str | Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an Ed25519 private key (make one: openssl genpkey -algorithm ed25519)")
    return key


def _load_public_key(path: str | Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path}: not an Ed25519 public key")
    return key


def check_signing_key(path: str | Path | None) -> None:
    """Fail before any work when a signing key is given but unusable."""
    if path is not None:
        _load_private_key(path)


def write_manifest(run_dir: Path, sign_key: str | Path | None = None) -> None:
    data = manifest_bytes(run_dir)
    (run_dir / MANIFEST).write_bytes(data)
    if sign_key is not None:
        signature = _load_private_key(sign_key).sign(data)
        (run_dir / SIGNATURE).write_text(base64.b64encode(signature).decode() + "\n")


def verify(run_dir: str | Path, public_key: str | Path | None = None) -> dict:
    """Compare a run directory with its manifest. ``ok`` is False when anything differs."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.exists():
        raise UserError(f"{run_dir}: no {MANIFEST}; is it a compressctl run directory?")
    raw = path.read_bytes()
    try:
        listed = json.loads(raw)["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a readable manifest ({exc})") from None
    present = set(_files(run_dir))
    differ = sorted(n for n in listed if n in present and sha256_file(run_dir / n) != listed[n].get("sha256"))
    result = {
        "run_dir": str(run_dir),
        "files": len(listed),
        "differ": differ,
        "missing": sorted(set(listed) - present),
        "added": sorted(present - set(listed)),
        "signature": None,
    }
    if public_key is not None:
        result["signature"] = _check_signature(run_dir, raw, public_key)
    result["ok"] = not (result["differ"] or result["missing"] or result["added"]) and result["signature"] in (
        None,
        "valid",
    )
    return result


def _check_signature(run_dir: Path, manifest: bytes, public_key) -> str:
    from cryptography.exceptions import InvalidSignature

    key = _load_public_key(public_key)
    sig_path = run_dir / SIGNATURE
    if not sig_path.exists():
        return "missing"
    try:
        key.verify(base64.b64decode(sig_path.read_text().strip(), validate=True), manifest)
    except (InvalidSignature, ValueError):
        return "invalid"
    return "valid"
