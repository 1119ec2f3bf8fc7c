"""The stage loop: the recipe's stages applied in order to the Keras model (cached outputs reused
under --resume), and the export of the compressed model the targets convert."""

from __future__ import annotations

import time
from pathlib import Path

from compressctl import stages
from compressctl.core.events import Event
from compressctl.model.selectors import layer_table, needs_binding
from compressctl.recipe.schema import bind_selectors
from compressctl.run.state import RunState


def run_stages(ctx: RunState) -> tuple[object, list[dict]]:
    """Apply the recipe's stages in order, reusing cached outputs under --resume."""
    from compressctl.core.env import seed_everything
    from compressctl.stages.base import StageContext

    recipe, emit = ctx.recipe, ctx.emit
    stage_ctx = StageContext(
        data=ctx.data,
        task=ctx.task,
        batch_size=recipe.training.batch_size,
        seed=recipe.seed,
        emit=emit,
        max_steps_per_epoch=recipe.training.steps_per_epoch,
        run_eagerly=recipe.training.run_eagerly,
    )
    stage_ctx.strategy = ctx.strategy
    model, rows = ctx.handle.keras, []
    for index, params in enumerate(recipe.stages):
        label = f"stage {index + 1}/{len(recipe.stages)}: {params.type}"
        if needs_binding(params):  # type:/role:/feeds: selectors name the layers of the model at hand
            params, _ = bind_selectors(params, layer_table(model), index, recipe_path=ctx.recipe_info.get("path", ""))
        stage = stages.build(params)
        key = ctx.cache.key_for(params, stage.input_files())
        hit = ctx.cache.load(key) if ctx.resume else None
        if hit is not None:
            model, row = hit
            row["cached"] = True
            rows.append(row)
            emit(Event("step", f"{label} (cached, skipped)"))
            continue
        emit(Event("step", label))
        # Seeding each stage by its index makes a resumed run compute what a full run would.
        seed_everything(recipe.seed + index)
        t0 = time.perf_counter()
        result = stage.apply(model, stage_ctx)
        model = result.model
        metric_value = stage_ctx.evaluate(model)
        row = {"type": params.type, "seconds": round(time.perf_counter() - t0, 3), "metric_value": metric_value}
        row.update(result.measured)
        row.update({"layers": result.layers, "skipped_layers": result.skipped_layers, "notes": result.notes})
        row["cached"] = False
        row["columns"] = list(stage.columns)  # the per-layer figures renderers show, declared by the stage
        ctx.cache.store(key, model, row)
        rows.append(row)
        emit(Event("step", f"stage {params.type}: {ctx.task.metric_name} {metric_value:.4f}", data=row))
    return model, rows


def export_compressed(ctx: RunState, model, baseline_sm: Path) -> Path:
    """The SavedModel the targets convert: the stages' output, or the baseline's when there are none."""
    from compressctl.model.loading import export_saved_model

    if not ctx.recipe.stages:
        return baseline_sm
    ctx.emit(Event("step", "exporting the compressed model"))
    return export_saved_model(ctx.handle, ctx.work / "final_savedmodel", ctx.data.sample_shape, model=model)
