"""Caviar: train many models at once — fused into one stacked model per group — and keep the best."""
from sturgeon.caviar.fused import GROUP_KEYS, FusedTrainer, group_key
from sturgeon.caviar.groups import make_groups
from sturgeon.caviar.runner import CaviarSettings, run_caviar
from sturgeon.caviar.shards import Shards
from sturgeon.schedulers._asha import SuccessiveHalving

__all__ = ["FusedTrainer", "group_key", "GROUP_KEYS", "make_groups", "SuccessiveHalving", "CaviarSettings",
           "run_caviar", "Shards"]
