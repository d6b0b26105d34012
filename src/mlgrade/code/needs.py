"""Code that needs a library the sandbox does not have: when the answer's code stops while
loading on `import nltk` (or numpy, pandas, ...), running it proves nothing either way, so the
run says "not verified here" (status not-run) and the grader's reading of the text stands, with
a review flag so a person can check it by hand.

Only a genuine, widely used third-party package counts. The load error is written by the
candidate's own interpreter, so wrong code could raise `ModuleNotFoundError("No module named
'numpy'")` itself, or import a module that exists nowhere to dodge the tests; hence three checks:
the name is not a standard-library module (those the sandbox has), it is on the short list below,
and the code imports it with a plain statement of the module's body (one that runs whenever
loading gets that far, so the code could never load here whatever it did before) and reads a name
that import binds (an unused `import numpy` on top of wrong code does not skip its tests).
"""

from __future__ import annotations

import ast
import re
import sys

from ..review import NOT_VERIFIED_MARK as NOT_VERIFIED  # the start of a not-run result's error for this case

# import name -> the package's usual name. Curated on purpose: a longer list is a longer list of
# names that let code skip its tests.
LIBRARIES: dict[str, str] = {
    "numpy": "numpy", "pandas": "pandas", "scipy": "scipy", "sklearn": "scikit-learn", "nltk": "nltk",
    "spacy": "spaCy", "torch": "PyTorch", "tensorflow": "TensorFlow", "keras": "Keras", "gensim": "gensim",
    "transformers": "transformers", "matplotlib": "matplotlib", "seaborn": "seaborn",
    "statsmodels": "statsmodels", "xgboost": "XGBoost", "lightgbm": "LightGBM", "jax": "JAX",
    "networkx": "NetworkX", "more_itertools": "more-itertools", "toolz": "toolz",
}
_MESSAGE = re.compile(r"No module named '([A-Za-z_][A-Za-z0-9_.]*)'")


def _imported_at_load(code: str) -> set[str]:
    """Top-level names of the modules the module body imports unconditionally and the code then
    uses: an import nothing reads (wrong code with `import numpy` on top) proves no need of it."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    bound: dict[str, str] = {}  # name the import binds -> its module's top-level name
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                bound[a.asname or a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                bound[a.asname or a.name] = node.module.split(".")[0]
    try:
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    except RecursionError:
        return set()
    return {module for name, module in bound.items() if name in read}


def missing_library(code: str, error_type: str, message: str) -> str | None:
    """The library's usual name when a load error is the sandbox lacking a listed library that
    the code imports at load; else None (the error is the code's)."""
    if error_type != "ModuleNotFoundError":
        return None
    m = _MESSAGE.fullmatch(message.strip())
    if not m:
        return None
    top = m.group(1).split(".")[0]
    if top in sys.stdlib_module_names or top not in LIBRARIES or top not in _imported_at_load(code):
        return None
    return LIBRARIES[top]


def not_verified(library: str) -> str:
    return f"{NOT_VERIFIED}: it needs {library}, which the sandbox does not provide"

