"""The Tune loop's one-line reasons for a trial that failed outside its own code."""

import pytest

from compressctl.search.tune_loop import error_line

pytestmark = pytest.mark.unit


class _Trial:
    def __init__(self, error_file=None):
        self.error_file = error_file


def test_a_lost_node_is_named_in_the_reason(tmp_path):
    node = {"ip": "10.213.7.2", "id": "620c31b6e1cf" + "0" * 44}
    line = error_line(_Trial(), node, lost=True)
    assert line == "node lost: node 10.213.7.2 (620c31b6e1cf) left the Ray cluster while the trial ran"


def test_a_crashed_worker_keeps_rays_reason(tmp_path):
    error = tmp_path / "error.txt"
    error.write_text(
        "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
        "\tclass_name: ImplicitFunc\n"
        "Worker exit type: SYSTEM_ERROR Worker exit detail: the process was killed by SIGKILL\n"
    )
    node = {"ip": "10.213.7.1", "id": "a" * 56}
    line = error_line(_Trial(str(error)), node, lost=False)
    assert line.startswith("worker crashed: ray.exceptions.ActorDiedError: The actor died unexpectedly")
    assert "SIGKILL" in line and "node lost" not in line
    assert error_line(_Trial()) == "worker crashed (no error recorded)"
