"""``demo_float``: a float32 artifact, and two figures of its own on the report (its size in KiB, a label)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compressctl.targets.base import Conversion, Figure, Target, TargetParams


class DemoFloatTarget(Target):
    """float32 TFLite, checked by reading its size back (a stand-in for a new device)."""

    type = "demo_float"
    figures = (
        Figure("file_kib", "float", "file {value:.1f} KiB on the demo board"),
        Figure("board", "str", "board {value}"),
    )

    class Params(TargetParams):
        type: Literal["demo_float"]
        board: str = Field("devkit", description="Name of the demo board, shown on the report.")

    @classmethod
    def supports(cls, layer) -> bool | str:
        return "no demo kernel for LSTM" if type(layer).__name__ == "LSTM" else True

    def conversions(self) -> list[Conversion]:
        return [Conversion("float32", label="float32 (demo)")]

    def finish(self, path, folder, emit) -> dict:
        (folder / "board.txt").write_text(self.params.board + "\n")
        return {"file_kib": path.stat().st_size / 1024, "board": self.params.board}
