"""Classical phase retrieval: ER, HIO, RAAR, difference map, OSS, shrink-wrap, recipes, batched starts.

``Engine`` runs a recipe such as ``"20*ER + 3*(180*HIO + SW) + 200*ER"`` on a
batch of random starts (torch, CPU or CUDA); the named presets of
:mod:`doubledip.classical.presets` register themselves as methods of
:mod:`doubledip.methods` (``hio-er-sw``, ``raar-er-sw``, ...).
"""

from doubledip.classical.engine import Engine, centre_object
from doubledip.classical.options import ClassicalOptions
from doubledip.classical.presets import PRESETS, solve
from doubledip.classical.recipe import OPERATIONS, Recipe, RecipeError, parse

__all__ = ["Engine", "ClassicalOptions", "PRESETS", "solve", "parse", "Recipe", "RecipeError", "OPERATIONS",
           "centre_object"]
