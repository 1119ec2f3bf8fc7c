"""Stage cache for ``--resume``: each stage's output model, keyed by everything that made it.

The key of stage i is a hash chain: sha256(key of stage i-1, stage i's params), starting from
sha256(model files, data file, seed, task, training settings, package versions). Change any of
those and every later key changes with it, so a cached output is only reused when the same
inputs would recompute it. Entries live beside the run directory (``.NAME.cache/``), are written
whole (temporary folder, then rename), and survive a failed run: that is what makes resuming it
possible. Only the current chain's entries are kept after a run completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from compressctl.core.measure import package_versions, sha256_file


def _hash_path(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        digest.update(sha256_file(f).encode())
    return digest.hexdigest()


def _rebuilds_from_config(model) -> bool:
    """Whether ``load`` can rebuild the model from its config alone (QAT wrappers around TFOpLambda
    arithmetic, for one, cannot: they reload only from traced functions)."""
    from compressctl.core.env import tfmot

    try:
        with tfmot().quantization.keras.quantize_scope():
            model.__class__.from_config(model.get_config())
    except Exception:  # noqa: BLE001 - any failure means: keep the traces
        return False
    return True


class StageCache:
    def __init__(self, out: Path, model_path: Path, data_sha256: str, settings: dict, root: Path | None = None):
        # root: a cache shared by several runs (search trials); entries are then never replaced.
        self.shared = root is not None
        self.root = Path(root) if root is not None else out.parent / f".{out.name}.cache"
        seed = {
            "model": _hash_path(model_path),
            "data": data_sha256,
            "settings": settings,
            "packages": package_versions(),
        }
        self.base = hashlib.sha256(json.dumps(seed, sort_keys=True, default=str).encode()).hexdigest()
        self.keys: list[str] = []

    def key_for(self, params, input_files: list[str] = ()) -> str:
        """The next key of the chain; ``input_files`` are files the stage reads besides its input model."""
        previous = self.keys[-1] if self.keys else self.base
        # A stage that reads a file (a distillation student) is keyed by the file's content too.
        files = [_hash_path(Path(p)) for p in input_files if Path(p).exists()]
        key = hashlib.sha256((previous + params.model_dump_json() + "".join(files)).encode()).hexdigest()
        self.keys.append(key)
        return key

    def load(self, key: str):
        """(model, report row) from a valid entry, or None."""
        entry = self.root / key
        try:
            row = json.loads((entry / "row.json").read_text())
        except (OSError, ValueError):
            return None
        from compressctl.core.env import keras, tfmot
        from compressctl.stages.qat_configs import register_classes

        register_classes()
        try:
            with tfmot().quantization.keras.quantize_scope():
                model = keras().models.load_model(str(entry / "model"), compile=False)
        except Exception:  # noqa: BLE001 - a broken entry is recomputed, not trusted
            return None
        return model, row

    def store(self, key: str, model, row: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        try:
            # Without traced call functions when the model rebuilds from its layers' configs: that save
            # is several times faster, and the entry then reloads from those configs.
            traces = not _rebuilds_from_config(model)
            model.save(str(tmp / "model"), save_format="tf", include_optimizer=False, save_traces=traces)
            (tmp / "row.json").write_text(json.dumps(row))
            final = self.root / key
            if final.exists() and self.shared:
                # Another run stored this key first: same inputs, same output; keep theirs.
                shutil.rmtree(tmp, ignore_errors=True)
                return
            if final.exists():
                shutil.rmtree(final)
            try:
                os.replace(tmp, final)
            except OSError:
                if not (self.shared and final.exists()):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def reuse_file(self, name: str, target: Path, make) -> bool:
        """In a shared cache, copy the file ``name`` made from the same inputs to ``target`` (True), or call
        ``make()`` to write ``target`` and keep a copy for the next run (False). Unshared: just ``make()``."""
        if not self.shared:
            make()
            return False
        entry = self.root / f"{name}-{self.base}"
        if entry.is_file():
            shutil.copyfile(entry, target)
            return True
        make()
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=self.root)
        os.close(fd)
        shutil.copyfile(target, tmp)
        os.replace(tmp, entry)
        return False

    def prune_others(self) -> None:
        """Keep only this run's chain."""
        if not self.root.exists():
            return
        for entry in self.root.iterdir():
            if entry.name not in self.keys:
                shutil.rmtree(entry, ignore_errors=True)
