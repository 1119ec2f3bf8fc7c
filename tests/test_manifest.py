import subprocess

import pytest

from compressctl.core.errors import UserError
from compressctl.run import manifest


@pytest.fixture()
def run_dir(tmp_path):
    d = tmp_path / "run"
    (d / "cpu").mkdir(parents=True)
    (d / "cpu" / "model.tflite").write_bytes(b"\x00tflite-bytes")
    (d / "report.json").write_text('{"schema_version": 1}\n')
    return d


@pytest.fixture()
def keys(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = tmp_path / "key.pem"
    public = tmp_path / "pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def test_untouched_run_verifies(run_dir):
    manifest.write_manifest(run_dir)
    result = manifest.verify(run_dir)
    assert result["ok"] is True
    assert result["files"] == 2


def test_every_changed_missing_or_added_file_is_named(run_dir):
    manifest.write_manifest(run_dir)
    (run_dir / "cpu" / "model.tflite").write_bytes(b"tampered")
    (run_dir / "report.json").unlink()
    (run_dir / "extra.bin").write_bytes(b"x")
    result = manifest.verify(run_dir)
    assert result["ok"] is False
    assert result["differ"] == ["cpu/model.tflite"]
    assert result["missing"] == ["report.json"]
    assert result["added"] == ["extra.bin"]


def test_signed_manifest(run_dir, keys, tmp_path):
    private, public = keys
    manifest.write_manifest(run_dir, sign_key=private)
    assert manifest.verify(run_dir, public_key=public)["signature"] == "valid"
    # A manifest edited to match tampered files no longer matches its signature.
    text = (run_dir / "manifest.json").read_text().replace('"size_bytes": 13', '"size_bytes": 14')
    (run_dir / "manifest.json").write_text(text)
    result = manifest.verify(run_dir, public_key=public)
    assert result["signature"] == "invalid" and result["ok"] is False


def test_unsigned_run_checked_with_a_key_reports_missing_signature(run_dir, keys):
    manifest.write_manifest(run_dir)
    result = manifest.verify(run_dir, public_key=keys[1])
    assert result["signature"] == "missing" and result["ok"] is False


def test_openssl_made_keys_work(run_dir, tmp_path):
    openssl = subprocess.run(["which", "openssl"], capture_output=True, text=True).stdout.strip()
    if not openssl:
        pytest.skip("openssl is not installed")
    key, pub = tmp_path / "k.pem", tmp_path / "p.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", key], check=True)
    subprocess.run([openssl, "pkey", "-in", key, "-pubout", "-out", pub], check=True)
    manifest.write_manifest(run_dir, sign_key=key)
    assert manifest.verify(run_dir, public_key=pub)["ok"] is True


def test_bad_keys_are_user_errors(run_dir, tmp_path, keys):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a key")
    with pytest.raises(UserError, match="not a readable unencrypted PEM private key"):
        manifest.check_signing_key(bogus)
    manifest.write_manifest(run_dir)
    with pytest.raises(UserError, match="not a readable PEM public key"):
        manifest.verify(run_dir, public_key=bogus)


def test_not_a_run(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        manifest.verify(tmp_path)


@pytest.mark.slow
def test_signed_run_verifies_through_the_cli_and_tampering_is_named(tmp_path, keys, tiny_cnn_path, tiny_data):
    import json
    import sys

    private, public = keys
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\n"
        "stages: [{type: prune, epochs: 1}]\nbench: {runs: 5, warmup: 1}\n"
    )
    out = tmp_path / "run"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "compressctl", *map(str, args)], capture_output=True, text=True)

    first = cli("run", recipe, "--out", out, "--sign-key", private, "--quiet")
    assert first.returncode == 0, first.stderr
    assert (out / "manifest.sig").exists()
    ok = cli("verify", out, "--public-key", public)
    assert ok.returncode == 0, ok.stderr
    assert "signature: valid" in ok.stdout
    resumed = cli("run", recipe, "--out", out, "--resume", "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert [s["cached"] for s in json.loads(resumed.stdout)["stages"]] == [True]
    with open(out / "cpu" / "model.tflite", "ab") as f:
        f.write(b"\0")
    bad = cli("verify", out, "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["differ"] == ["cpu/model.tflite"]
    named = cli("verify", out)
    assert "differ: cpu/model.tflite" in named.stderr
