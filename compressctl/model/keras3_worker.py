"""Run a Keras 3 ``.keras`` model on samples, in a process of its own (see compressctl.model.keras3).

Usage: ``python -m compressctl.model.keras3_worker MODEL.keras INPUTS.npy OUTPUTS.npy [--unsafe]``.
compressctl's own process must keep Keras 2 (tf_keras) for TFMOT, and one process cannot hold
both Keras versions, so the Keras 3 side of the conversion check runs here. The parent starts it
without ``TF_USE_LEGACY_KERAS``, so ``import keras`` gives Keras 3. Exit status 0 on success; on
failure one line on stderr says why.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    model_path, inputs_path, outputs_path = argv[:3]
    safe_mode = "--unsafe" not in argv[3:]
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np

    try:
        import keras

        model = keras.saving.load_model(model_path, compile=False, safe_mode=safe_mode)
        outputs = model.predict(np.load(inputs_path), batch_size=256, verbose=0)
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent as one line
        text = str(exc).strip().splitlines()
        print(f"Keras 3 could not run the model: {text[0] if text else type(exc).__name__}", file=sys.stderr)
        return 1
    np.save(outputs_path, np.asarray(outputs, dtype=np.float32))
    print(keras.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
