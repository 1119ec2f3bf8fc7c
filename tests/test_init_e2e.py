"""`compressctl init` on every model family of the suite writes a recipe that runs: exit 0 or 1, never 3.

One tiny model per family, trained for a few epochs on small data; each written recipe is run with
its epochs cut to one, few calibration samples and a short benchmark, in this process.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import breast_cancer_split, quadrant_data

pytestmark = pytest.mark.slow

FAMILIES = ["cnn", "mlp", "gru", "tabular", "residual_bn", "mobilenet_v2_like", "inference_only"]


def _image_models(k):
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    h = k.layers.BatchNormalization(name="bn_a")(h)
    h = k.layers.ReLU()(h)
    r = k.layers.Conv2D(8, 3, padding="same", name="conv_b")(h)
    r = k.layers.BatchNormalization(name="bn_b")(r)
    h = k.layers.ReLU()(k.layers.Add()([h, r]))
    residual = k.Model(inputs, k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D()(h)))

    # MobileNetV2's inverted residual block: 1×1 expand, depthwise 3×3, 1×1 project, skip connection.
    inputs = k.Input((8, 8, 1))
    x = k.layers.ReLU(6.0)(k.layers.BatchNormalization()(k.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)))
    e = k.layers.ReLU(6.0)(k.layers.BatchNormalization()(k.layers.Conv2D(24, 1, use_bias=False)(x)))
    d = k.layers.ReLU(6.0)(
        k.layers.BatchNormalization()(k.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(e))
    )
    p = k.layers.BatchNormalization()(k.layers.Conv2D(8, 1, use_bias=False)(d))
    x = k.layers.Add()([x, p])
    mobilenet = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))

    mlp = k.Sequential(
        [k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(32, activation="relu", name="fc1"),
         k.layers.Dense(3, activation="softmax", name="fc2")]
    )  # fmt: skip
    return {"residual_bn": residual, "mobilenet_v2_like": mobilenet, "mlp": mlp}


@pytest.fixture(scope="module")
def families(tmp_path_factory, tiny_cnn_path, tiny_data, tabular_norm) -> dict[str, tuple[Path, Path]]:
    from compressctl.tfenv import keras, seed_everything, tf

    seed_everything(0)
    k = keras()
    root = tmp_path_factory.mktemp("families")
    image = quadrant_data()
    out = {"cnn": (tiny_cnn_path, tiny_data), "tabular": tabular_norm}
    for name, model in _image_models(k).items():
        logits = name == "residual_bn"
        model.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=logits))
        model.fit(image["x_train"], image["y_train"], epochs=3, verbose=0)
        model.save(str(root / name))
        out[name] = (root / name, tiny_data)

    rng = np.random.default_rng(0)
    x = rng.random((200, 10, 4), dtype=np.float32)
    y = (x[:, :, 0].sum(1) > 5).astype(int)
    np.savez(root / "seq.npz", x_train=x[:150], y_train=y[:150], x_test=x[150:], y_test=y[150:])
    gru = k.Sequential([k.Input((10, 4)), k.layers.GRU(8, name="gru"), k.layers.Dense(2, activation="softmax")])
    gru.compile("adam", "sparse_categorical_crossentropy")
    gru.fit(x[:150], y[:150], epochs=2, verbose=0)
    gru.save(str(root / "gru"))
    out["gru"] = (root / "gru", root / "seq.npz")

    t = tf()
    plain = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(3, activation="softmax")])
    module = t.Module()
    module.model = plain
    module.f = t.function(lambda v: {"probs": plain(v)}, input_signature=[t.TensorSpec([None, 8, 8, 1], t.float32)])
    t.saved_model.save(module, str(root / "inference_only"), signatures=module.f)
    out["inference_only"] = (root / "inference_only", tiny_data)
    assert breast_cancer_split  # the tabular family's data comes from the shared fixture
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_init_recipe_runs_to_completion(family, families, tmp_path):
    from compressctl import api
    from compressctl.starter import starter_recipe

    model, data = families[family]
    info = api.inspect(str(model))
    recipe_path = tmp_path / "recipe.yaml"
    text = starter_recipe(info, str(model), str(data), recipe_path)
    # As cheap as a run can be: one epoch per stage, few calibration samples, a short benchmark.
    recipe = yaml.safe_load(text)
    for stage in recipe.get("stages", []):
        stage["epochs"] = 1
    for target in recipe["targets"]:
        target["calibration_samples"] = 32
        # A budget no artifact exceeds: selective int8's re-conversions are tested in test_selective.py.
        target["max_metric_drop"] = 1.0
    recipe["bench"] = {"runs": 10, "warmup": 1, "rounds": 1, "threads": 1}
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    result = api.run(str(recipe_path), out=str(tmp_path / "run"))
    report = result.report
    assert result.exit_code in (0, 1), report["failed_targets"]
    assert report["artifacts"] and not report["failed_targets"]
    for stage in report["stages"]:
        if stage["type"] == "quantize":
            # Layers QAT cannot annotate are listed with the reason, not fatal.
            assert all(s["reason"] for s in stage["skipped_layers"])
