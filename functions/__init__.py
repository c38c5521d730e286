"""The Lambda functions' entry modules, as packages for local use (`functions.feed.app`).

In Lambda each folder is a function's code root and the runtime imports `app` from it (handler
`app.handler`); the `__init__.py` files are only there for local imports (tests, infra/invoke.py,
bench/). This file is in no function's code.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def load_app(function: str) -> ModuleType:
    """`functions.<function>.app` with its init run now, in the current environment (the module
    reads its settings when it runs, as in a Lambda cold start): imported, or run again with
    importlib.reload when this process imported it before. There is one module object per
    function and process, so a reload re-initialises the object an earlier caller holds too."""
    name = f"{__name__}.{function}.app"
    if name in sys.modules:
        return importlib.reload(sys.modules[name])
    return importlib.import_module(name)
