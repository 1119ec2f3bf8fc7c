"""The plain script a user would write for what recipes/cpu-int8.yaml does: convert the model to
float32 and calibrated int8 TFLite, evaluate both on the test split, time both alternately.
Usage: python plain_ptq.py MODEL DATA.npz OUT_DIR
"""

import os
import sys
import time

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

model_path, data_path, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
data = np.load(data_path)
x_train, x_test, y_test = data["x_train"], data["x_test"], data["y_test"]
model = keras.models.load_model(model_path, compile=False)
keras_accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), 1) == y_test))
fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
    tf.TensorSpec([1, *x_train.shape[1:]], tf.float32)
)

converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
with open(f"{out}/float32.tflite", "wb") as f:
    f.write(converter.convert())
converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
rng = np.random.default_rng(0)
calibration = x_train[rng.choice(len(x_train), 200, replace=False)]
converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
with open(f"{out}/int8.tflite", "wb") as f:
    f.write(converter.convert())


def interpreter(path):
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    return it


def accuracy(it):
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    hits = 0
    for k in range(len(x_test)):
        it.set_tensor(i["index"], x_test[k : k + 1])
        it.invoke()
        hits += int(np.argmax(it.get_tensor(o["index"])) == y_test[k])
    return hits / len(x_test)


base, q = interpreter(f"{out}/float32.tflite"), interpreter(f"{out}/int8.tflite")
accuracies = (accuracy(base), accuracy(q))
times = {"base": [], "int8": []}
for _ in range(5):
    for name, it in (("base", base), ("int8", q)):
        for _ in range(40):
            t = time.perf_counter()
            it.invoke()
            times[name].append(time.perf_counter() - t)
print(keras_accuracy, accuracies, np.median(times["base"]) / np.median(times["int8"]))
