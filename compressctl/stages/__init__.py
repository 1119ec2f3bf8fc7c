"""Compression techniques, one module each. Importing this package does not import TensorFlow."""

from compressctl.stages.cluster import Cluster
from compressctl.stages.distill import Distill
from compressctl.stages.lowrank import LowRank
from compressctl.stages.prune import Prune
from compressctl.stages.prune_channels import PruneChannels
from compressctl.stages.quantize import Quantize

STAGES = {"prune": Prune, "cluster": Cluster, "quantize": Quantize, "lowrank": LowRank, "distill": Distill}
STAGES[PruneChannels.type] = PruneChannels  # structured pruning (issue 12)


def build(params):
    """The stage object for one validated ``stages[]`` entry."""
    return STAGES[params.type](params)
